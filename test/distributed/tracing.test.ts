import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import type { Broker } from '../../src/platform/broker/broker.ts';
import { InProcessBroker } from '../../src/platform/broker/in-process.ts';
import { writeEvents } from '../../src/platform/broker/outbox.ts';
import { RabbitMqBroker } from '../../src/platform/broker/rabbitmq.ts';
import { systemClock } from '../../src/platform/clock.ts';
import { startTracing, stopTracing, tracer } from '../../src/platform/tracing/tracing.ts';
import { TokenService } from '../../src/platform/tokens.ts';
import { createPspServer, type PspServer } from '../../src/psp/index.ts';
import { distributedRun, type DistributedRun } from '../support/distributed.ts';
import { freshAmqpPrefix, freshPostgres } from '../support/engines.ts';
import { httpClient, testConfig, until, type HttpClient } from '../support/harness.ts';
import { clientTraceparent, connectivityProblems, startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from '../support/otlp-receiver.ts';
import { startCliProcess, stopProcess, type CliProcess } from '../support/process.ts';

/** Short, so the deadline's close check (which joins the order's trace) comes within the test. */
const WINDOW_S = 6;

/**
 * The distributed mode as deployed — `flashsale api` and `flashsale worker` as separate processes
 * on PostgreSQL, Redis and RabbitMQ — exporting traces over OTLP/HTTP JSON to a receiver in this
 * test: one purchase, paid, is one trace across both processes.
 */
describe('tracing across processes: flashsale api and flashsale worker', { timeout: 120_000 }, () => {
  const secret = `jwt-${randomUUID()}`;
  const tokens = new TokenService(secret, 3600);
  const children: CliProcess[] = [];
  let receiver: OtlpReceiver;
  let run: DistributedRun;
  let psp: PspServer;
  let http: HttpClient;
  let pspUrl = '';

  before(async () => {
    receiver = await startOtlpReceiver();
    run = await distributedRun(secret, {
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', OTEL_BSP_SCHEDULE_DELAY: '200', LOG_LEVEL: 'warn',
    });
    const apiUrl = `http://127.0.0.1:${run.apiPort}`;
    psp = await createPspServer({
      config: testConfig({ PSP_DATA_DIR: 'memory://', PSP_API_KEY: run.env.PSP_API_KEY!, PSP_WEBHOOK_SECRET: run.env.PSP_WEBHOOK_SECRET!, PSP_WEBHOOK_URL: `${apiUrl}/v1/payments/webhook` }),
      publicUrl: () => pspUrl,
    });
    pspUrl = await psp.listen({ host: '127.0.0.1', port: 0 });
    const env = { ...run.env, PSP_URL: pspUrl };
    const started = await Promise.allSettled([
      startCliProcess(['api'], env, { ready: { http: `${apiUrl}/ready` }, url: apiUrl, timeoutMs: 60_000 }),
      startCliProcess(['worker'], { ...env, LOG_LEVEL: 'info' }, { ready: { log: 'worker is up' }, timeoutMs: 60_000 }),
    ]);
    for (const s of started) if (s.status === 'fulfilled') children.push(s.value);
    const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed) throw failed.reason;
    http = httpClient(apiUrl, 4);
  });

  after(async () => {
    await http?.close();
    const exits = await Promise.all(children.map((c) => stopProcess(c, 10_000)));
    await psp?.close();
    await run?.cleanup();
    await receiver?.close();
    assert.deepEqual(exits, children.map(() => '0'), 'both processes shut down cleanly on SIGTERM');
  });

  it('when a buyer buys and pays, then the spans of both processes form one connected trace: request, gate, group commit, relay, every consumer, the payment webhook and the deadline\'s close check', async () => {
    const admin = tokens.issue({ userId: randomUUID(), role: 'admin' });
    const email = `m-${randomUUID()}@trace.test`;
    assert.equal((await http.request('POST', '/v1/admin/merchants', { token: admin, body: { email, password: 'merchant-password', shopName: 'Traced' } })).status, 201);
    const merchant = (await http.request('POST', '/v1/auth/login', { body: { email, password: 'merchant-password' } })).body.token as string;
    const product = await http.request('POST', '/v1/products', { token: merchant, body: { name: 'Lamp', price: 4000, currency: 'USD' } });
    const now = Date.now();
    const sale = await http.request('POST', '/v1/flash-sales', {
      token: merchant,
      body: {
        name: 'Traced sale', startsAt: new Date(now - 1000).toISOString(), endsAt: new Date(now + 3600_000).toISOString(), paymentWindowS: WINDOW_S,
        items: [{ productId: product.body.id, flashPrice: 2000, stock: 5, perUserLimit: 1 }],
      },
    });
    assert.equal(sale.status, 201, JSON.stringify(sale.body));

    // The buyer's client starts the trace: its traceparent names the trace id to look for.
    const client = clientTraceparent();
    const buyer = tokens.issue({ userId: randomUUID(), role: 'buyer' });
    const placed = await http.request('POST', '/v1/orders', { token: buyer, headers: { traceparent: client.traceparent }, body: { items: [{ saleItemId: sale.body.items[0].id, quantity: 1 }] } });
    assert.equal(placed.status, 201, JSON.stringify(placed.body));
    const orderId: string = placed.body.id;
    const payment = await http.request('POST', `/v1/orders/${orderId}/payment`, { token: buyer });
    assert.equal(payment.status, 201, JSON.stringify(payment.body));
    const click = await fetch(`${pspUrl}/pay/${payment.body.providerPaymentId}/pay`, { method: 'POST', redirect: 'manual' });
    await click.arrayBuffer();
    await until(async () => (await http.request('GET', `/v1/orders/${orderId}`, { token: buyer })).body.status === 'PAID', 'the order PAID', 20_000);

    const expected = [
      'POST /v1/orders', 'gate admit', 'group_commit wait', 'order.created publish', 'order.created process',
      'payment webhook', 'payment.succeeded publish', 'payment.succeeded process',
      'order.paid publish', 'order.paid process', 'order.deadline publish', 'order.deadline process',
    ];
    const trace = (): ReceivedSpan[] => receiver.spans.filter((s) => s.traceId === client.traceId);
    const missing = () => expected.filter((name) => !trace().some((s) => s.name === name));
    await until(async () => missing().length === 0, 'every span of the purchase at the receiver', (WINDOW_S + 20) * 1000).catch((error: Error) => {
      throw new Error(`${error.message}; missing ${missing().join(', ')}; received ${[...new Set(trace().map((s) => s.name))].join(', ')}`);
    });

    assert.deepEqual(connectivityProblems(receiver.spans, client.traceId, client.spanId), [], 'every parent and link in the trace resolves');
    const serviceOf = (name: string) => new Set(trace().filter((s) => s.name === name).map((s) => s.resource['service.name']));
    assert.deepEqual(new Set(trace().map((s) => s.resource['service.name'])), new Set(['flashsale-api', 'flashsale-worker']), 'both processes are in the trace');
    assert.equal(new Set(trace().map((s) => s.resource['service.instance.id'])).size, 2, 'two service instances');
    assert.deepEqual(serviceOf('POST /v1/orders'), new Set(['flashsale-api']));
    assert.deepEqual(serviceOf('payment webhook'), new Set(['flashsale-api']));
    const consumers = trace().filter((s) => s.kind === 5);
    assert.deepEqual(new Set(consumers.map((s) => s.resource['service.name'])), new Set(['flashsale-worker']), 'the API runs no consumer: every consumer span is the worker\'s');
    assert.deepEqual(
      new Set(consumers.map((s) => s.attributes['messaging.consumer.group.name'])),
      new Set(['notifications', 'order-payments', 'order-deadlines', 'fulfillment-shipments']),
    );
    assert.ok(consumers.every((s) => s.attributes['messaging.system'] === 'rabbitmq'));

    // The group commit the purchase joined: a span of its own trace, linked to the request's wait.
    const wait = trace().find((s) => s.name === 'group_commit wait')!;
    assert.equal(wait.attributes['flashsale.order_id'], orderId, 'the order id is a tag to search by');
    const batch = receiver.spans.find((s) => s.name === 'group_commit' && s.links.some((l) => l.spanId === wait.spanId && l.traceId === client.traceId));
    assert.ok(batch, 'the batch span links to the request it carried');
    // The provider's webhook comes on a request of its own, with no trace context: its span joins
    // the order's trace, linked to that request.
    const webhook = trace().find((s) => s.name === 'payment webhook')!;
    assert.equal(webhook.links.length, 1);
    assert.ok(receiver.spans.some((s) => s.spanId === webhook.links[0]!.spanId && s.name === 'POST /v1/payments/webhook'), 'the webhook span links to its request');
  });
});

/**
 * A dead letter an admin replays continues the trace its message was written in (an order's), on
 * both brokers: RabbitMQ keeps the message's traceparent in `dead_letters` and sends it again with
 * the replay; the in-process broker's delivery row never lost it. On both, the replay is a publish
 * span in that trace, linked to the replaying request. Tracing runs in this process.
 */
describe('tracing a dead letter\'s replay', { timeout: 60_000 }, () => {
  it('when a dead letter is replayed, then its next attempt is in the trace the event was written in, linked from the replaying request, on both brokers', async () => {
    const receiver = await startOtlpReceiver();
    const pg = await freshPostgres();
    const amqp = await freshAmqpPrefix();
    const brokers: Broker[] = [];
    const running = new Set<Broker>();
    // The SDK's exporter reads process.env itself.
    const otel = { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', OTEL_BSP_SCHEDULE_DELAY: '50' };
    Object.assign(process.env, otel);
    await startTracing({ role: 'test', env: process.env });
    try {
      const log = pino({ level: 'silent' });
      const options = { maxAttempts: 2, backoffBaseMs: 1, pollMs: 20 };
      const cases: Array<[string, Broker]> = [
        ['in-process', new InProcessBroker(pg.db, systemClock, log, options)],
        ['rabbitmq', new RabbitMqBroker(pg.db, systemClock, log, { ...options, url: amqp.url, prefix: amqp.prefix, prefetch: 4, confirmTimeoutMs: 5000 })],
      ];
      for (const [kind, broker] of cases) {
        brokers.push(broker);
        running.add(broker);
        const consumer = `replayed-${kind}`;
        let fixed = false;
        const handled: string[] = [];
        broker.consume(consumer, [`replay.${kind}`], async (_tx, message) => {
          if (!fixed) throw new Error('not yet');
          handled.push(message.id);
        });
        await broker.start();
        // The purchase that wrote the event, and the admin's request that replays it: two traces.
        const written = await tracer.run('purchase', {}, async (span) => {
          await pg.db.transaction((tx) => writeEvents(tx, systemClock, [{ topic: `replay.${kind}`, payload: { kind } }]));
          return span.carrier()!;
        });
        const traceId = written.traceparent.split('-')[1]!;
        await until(async () => (await broker.listDeadLetters(10)).some((d) => d.consumer === consumer), `the ${kind} dead letter`);
        const [dead] = (await broker.listDeadLetters(10)).filter((d) => d.consumer === consumer);
        fixed = true;
        const replayedBy = await tracer.run('POST /v1/admin/dead-letters/:consumer/:messageId/replay', { parent: null }, async (span) => {
          assert.equal(await broker.replayDeadLetter(consumer, dead!.messageId), true);
          return span.carrier()!;
        });
        await until(async () => handled.length === 1, `the ${kind} replay handled`);
        await broker.stop(); // the next case's broker relays from the same outbox
        running.delete(broker);
        // Two failed attempts, then the replayed one: three consumer spans, all in the purchase's trace.
        const processes = () => receiver.spans.filter((s) => s.name === `replay.${kind} process`);
        await until(async () => processes().length === 3, `the ${kind} message's three consumer spans at the receiver`).catch((e: Error) => { throw new Error(`${e.message}: ${JSON.stringify(receiver.spans.map((s) => [s.name, s.traceId === traceId, s.attributes["flashsale.attempt"]]))}`); });
        assert.deepEqual(processes().map((s) => s.traceId === traceId), [true, true, true], `every attempt of the ${kind} message, the replayed one too, is in the purchase's trace`);
        const spanIds = new Set(receiver.spans.filter((s) => s.traceId === traceId).map((s) => s.spanId));
        assert.ok(processes().every((s) => s.parentSpanId && spanIds.has(s.parentSpanId)), 'each attempt is a child of a span of that trace');
        const replay = receiver.spans.find((s) => s.name === `replay.${kind} publish` && s.attributes['flashsale.replay'] === true);
        assert.ok(replay && replay.traceId === traceId, `the ${kind} replay is a publish in the purchase's trace`);
        assert.ok(processes().some((s) => s.parentSpanId === replay.spanId), 'the replayed attempt is its child');
        assert.deepEqual(replay.links.map((l) => l.traceId), [replayedBy.traceparent.split('-')[1]], 'linked to the request that replayed it');
      }
    } finally {
      await stopTracing();
      for (const key of Object.keys(otel)) delete process.env[key];
      for (const broker of running) await broker.stop();
      await amqp.drop(brokers);
      await pg.drop();
      await receiver.close();
    }
  });
});

