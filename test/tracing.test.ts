import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { Writable } from 'node:stream';
import { after, describe, it } from 'node:test';
import Fastify from 'fastify';
import type { App } from '../src/platform/http/server.ts';
import { registerTracing } from '../src/platform/http/tracing.ts';
import { createLogger } from '../src/platform/logger.ts';
import { startTracing, stopTracing, tracer, tracingWanted } from '../src/platform/tracing/tracing.ts';
import { startHarness, until } from './support/harness.ts';
import { clientTraceparent, connectivityProblems, startOtlpReceiver, type OtlpReceiver } from './support/otlp-receiver.ts';

/**
 * The OpenTelemetry SDK's modules in this process. The API package alone does not count: prom-client
 * loads it when it is installed (for exemplars), and without an SDK registered it does nothing.
 */
const loadedOpenTelemetry = () => Object.keys(createRequire(import.meta.url).cache).filter((path) => path.includes('@opentelemetry') && !path.includes('@opentelemetry/api/'));

/** Runs first: nothing in this process has started tracing yet. */
describe('tracing, embedded (one process, the in-process broker)', { timeout: 60_000 }, () => {
  for (const key of Object.keys(process.env)) if (key.startsWith('OTEL_')) delete process.env[key];
  let receiver: OtlpReceiver | undefined;
  after(async () => {
    await stopTracing();
    await receiver?.close();
  });

  it('when no OTEL_* variable asks for traces, then an order is placed without OpenTelemetry ever being loaded and nothing is written for it', async () => {
    assert.equal(tracingWanted({}), false);
    assert.equal(tracingWanted({ OTEL_SERVICE_NAME: 'x', OTEL_TRACES_SAMPLER: 'always_on' }), false, 'naming the service alone does not turn tracing on');
    assert.equal(tracingWanted({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' }), true);
    assert.equal(tracingWanted({ OTEL_TRACES_EXPORTER: 'otlp' }), true);
    assert.equal(tracingWanted({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318', OTEL_SDK_DISABLED: 'true' }), false);
    assert.equal(tracingWanted({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318', OTEL_TRACES_EXPORTER: 'none' }), false);

    await startTracing({ role: 'test', env: process.env });
    assert.equal(tracer.enabled, false);
    const h = await startHarness();
    try {
      const { sale } = await h.createSale();
      const orderId = await h.placeOrder(h.buyerToken().token, sale.items[0]!.id);
      await h.system.broker.drain();
      const rows = await h.system.db.query<{ traceparent: string | null }>('select traceparent from outbox union all select traceparent from orders where id = $1', [orderId]);
      assert.ok(rows.length > 1 && rows.every((r) => r.traceparent === null), 'no trace context is stored');
    } finally {
      await h.close();
    }
    assert.deepEqual(loadedOpenTelemetry(), [], 'no OpenTelemetry SDK module was loaded');
  });

  it('when OTLP/HTTP JSON export is configured, then a purchase and its payment are one trace from the request through the gate, the group commit, the relay and every consumer, and logs carry its ids', async () => {
    receiver = await startOtlpReceiver();
    Object.assign(process.env, {
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', OTEL_SERVICE_NAME: 'flashsale-embedded-test', OTEL_BSP_SCHEDULE_DELAY: '100',
    });
    await startTracing({ role: 'test', env: process.env });
    assert.equal(tracer.enabled, true);
    assert.ok(loadedOpenTelemetry().length > 0, 'the SDK is loaded once asked for');

    // Log lines inside a span carry its ids; secrets stay redacted.
    const lines: string[] = [];
    const log = createLogger({ LOG_LEVEL: 'info' }, new Writable({ write(chunk: Buffer, _enc, done) { lines.push(chunk.toString()); done(); } }));
    const ids = await tracer.run('log check', {}, async () => {
      log.info({ token: 'bearer-secret', password: 'hunter2', user: { password: 'x', token: 'y' } }, 'inside a span');
      return tracer.logFields();
    });
    const line = JSON.parse(lines[0]!) as Record<string, any>;
    assert.equal(line.trace_id, ids?.trace_id);
    assert.equal(line.span_id, ids?.span_id);
    assert.deepEqual([line.token, line.password, line.user.password, line.user.token], Array(4).fill('[redacted]'));
    assert.doesNotMatch(lines[0]!, /bearer-secret|hunter2/);

    // Fastify's own request lines: `request completed` is logged outside the handler's context, yet names the request's span.
    lines.length = 0;
    const edge = Fastify({ loggerInstance: log });
    registerTracing(edge as unknown as App);
    edge.get('/traced', async (request) => {
      request.log.info('in the handler');
      return {};
    });
    const caller = clientTraceparent();
    assert.equal((await edge.inject({ method: 'GET', url: '/traced', headers: { traceparent: caller.traceparent } })).statusCode, 200);
    await edge.close();
    const byMessage = new Map(lines.map((l) => JSON.parse(l) as Record<string, any>).map((l) => [l.msg, l]));
    for (const msg of ['in the handler', 'request completed']) assert.equal(byMessage.get(msg)?.trace_id, caller.traceId, `"${msg}" carries the request's trace id`);
    assert.equal(byMessage.get('request completed')!.span_id, byMessage.get('in the handler')!.span_id, 'and its span\'s id');
    assert.equal(lines.filter((l) => (l.match(/"trace_id"/g) ?? []).length > 1).length, 0, 'never twice on a line');

    const h = await startHarness();
    let orderId = '';
    const client = clientTraceparent();
    try {
      const { sale } = await h.createSale();
      const buyer = h.buyerToken();
      const placed = await h.http.request('POST', '/v1/orders', { token: buyer.token, headers: { traceparent: client.traceparent }, body: { items: [{ saleItemId: sale.items[0]!.id, quantity: 1 }] } });
      assert.equal(placed.status, 201, JSON.stringify(placed.body));
      orderId = placed.body.id;
      const payment = await h.http.request('POST', `/v1/orders/${orderId}/payment`, { token: buyer.token });
      assert.equal(payment.status, 201, JSON.stringify(payment.body));
      const click = await fetch(`${h.pspUrl}/pay/${payment.body.providerPaymentId}/pay`, { method: 'POST', redirect: 'manual' });
      await click.arrayBuffer();
      await until(async () => (await h.http.request('GET', `/v1/orders/${orderId}`, { token: buyer.token })).body.status === 'PAID', 'the order PAID');
      await h.system.broker.drain();
      const [row] = await h.system.db.query<{ traceparent: string }>('select traceparent from orders where id = $1', [orderId]);
      assert.match(row!.traceparent, new RegExp(`^00-${client.traceId}-[0-9a-f]{16}-01$`), 'the order keeps the trace it was placed in');
    } finally {
      await h.close();
      await stopTracing(); // flushes every span to the receiver
    }

    const trace = receiver.spans.filter((s) => s.traceId === client.traceId);
    const names = new Set(trace.map((s) => s.name));
    for (const name of [
      'POST /v1/orders', 'gate admit', 'group_commit wait', 'order.created publish', 'order.created process',
      'payment webhook', 'payment.succeeded publish', 'payment.succeeded process', 'order.paid publish', 'order.paid process',
    ]) assert.ok(names.has(name), `the trace has a span "${name}" (has: ${[...names].sort().join(', ')})`);
    assert.deepEqual(connectivityProblems(receiver.spans, client.traceId, client.spanId), []);
    const wait = trace.find((s) => s.name === 'group_commit wait')!;
    const batch = receiver.spans.find((s) => s.name === 'group_commit' && s.links.some((l) => l.spanId === wait.spanId));
    assert.ok(batch, 'the batch span that committed the order links to the request that joined it');
    const consumers = new Set(trace.filter((s) => s.kind === 5).map((s) => s.attributes['messaging.consumer.group.name']));
    assert.ok(consumers.has('notifications') && consumers.has('order-payments'), `consumers in the trace: ${[...consumers].join(', ')}`);
    assert.equal(trace[0]!.resource['service.name'], 'flashsale-embedded-test', 'OTEL_SERVICE_NAME names the service');
    assert.ok(receiver.contentTypes.has('application/json'));
  });

  it('when no protocol is named, then spans go as OTLP protobuf (the specification\'s default); grpc is refused at start', async () => {
    for (const key of Object.keys(process.env)) if (key.startsWith('OTEL_')) delete process.env[key];
    const protobuf = await startOtlpReceiver();
    try {
      process.env.OTEL_EXPORTER_OTLP_ENDPOINT = protobuf.url;
      await startTracing({ role: 'test', env: process.env });
      await tracer.run('one span', {}, async () => {});
      await stopTracing();
      assert.deepEqual([...protobuf.contentTypes], ['application/x-protobuf']);
      process.env.OTEL_EXPORTER_OTLP_PROTOCOL = 'grpc';
      await assert.rejects(startTracing({ role: 'test', env: process.env }), /OTEL_EXPORTER_OTLP_PROTOCOL=grpc is not supported/);
      assert.equal(tracer.enabled, false);
    } finally {
      await protobuf.close();
    }
  });

  it('when OTEL_TRACES_SAMPLER says parentbased_always_off, then a new trace is not recorded and one its caller sampled is', async () => {
    for (const key of Object.keys(process.env)) if (key.startsWith('OTEL_')) delete process.env[key];
    const json = await startOtlpReceiver();
    try {
      Object.assign(process.env, { OTEL_EXPORTER_OTLP_ENDPOINT: json.url, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', OTEL_TRACES_SAMPLER: 'parentbased_always_off' });
      await startTracing({ role: 'test', env: process.env });
      await tracer.run('a new trace', { parent: null }, async () => {});
      await tracer.run('a sampled caller\'s', { parent: { traceparent: clientTraceparent().traceparent } }, async () => {});
      await stopTracing();
      assert.deepEqual(json.spans.map((s) => s.name), ['a sampled caller\'s']);
    } finally {
      for (const key of Object.keys(process.env)) if (key.startsWith('OTEL_')) delete process.env[key];
      await json.close();
    }
  });
});
