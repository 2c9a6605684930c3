import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildSystem } from '../src/app.ts';
import { loadConfig } from '../src/platform/config.ts';
import { RabbitMqBroker } from '../src/platform/broker/rabbitmq.ts';
import type { Topology } from '../src/platform/broker/rabbitmq/topology.ts';
import type { Database } from '../src/platform/database/index.ts';
import { TokenService } from '../src/platform/tokens.ts';
import { deleteTopologies, freshAmqpPrefix, freshPostgres, freshRedisPrefix } from './support/engines.ts';
import { countBy, httpClient, runConcurrently, until, type HttpClient, type HttpResponse } from './support/harness.ts';
import { clusterSecrets, freePort, startCliProcess, stopProcess, type CliProcess } from './support/process.ts';
import { openStream } from './support/sse.ts';

const STOCK = 200;
const BUYERS = 3000;
/**
 * The payment window, on the real clock. It must outlast the burst: an order that expires while
 * buyers are still arriving releases its unit to one of them, and then "exactly 200 orders" would be
 * wrong (correctly so). The burst takes 8-14 s on a loaded 2-core machine, so 4 s is too short.
 */
const WINDOW_S = 20;

/**
 * The distributed mode as it is deployed: separate OS processes — two `flashsale api`, two
 * `flashsale worker` splitting the consumers, and the payment simulator — on one PostgreSQL
 * database, one Redis gate and one RabbitMQ, on the system clock. Nothing is shared in memory, so
 * whatever works here works because of the engines.
 */
describe('many processes: 2 APIs and 2 workers on the same engines', { timeout: 240_000 }, () => {
  /** The processes' secrets; the test issues tokens with the same JWT_SECRET. */
  const secrets = clusterSecrets();
  const tokens = new TokenService(secrets.JWT_SECRET, 3600);
  const admin = tokens.issue({ userId: randomUUID(), role: 'admin' });
  const children: CliProcess[] = [];
  const clients: HttpClient[] = [];
  const cleanups: Array<[string, () => Promise<unknown>]> = [];
  let db: Database;
  let apis: [CliProcess, CliProcess];
  let pspUrl = '';

  before(async () => {
    const postgres = await freshPostgres();
    cleanups.push(['drop the PostgreSQL database', () => postgres.drop()]);
    db = postgres.db;
    const redis = await freshRedisPrefix();
    cleanups.push(['drop the Redis prefix', () => redis.drop()]);
    const rabbit = await freshAmqpPrefix();
    const pspDir = mkdtempSync(join(tmpdir(), 'flashsale-multiprocess-'));
    cleanups.push(['remove the simulator directory', async () => rmSync(pspDir, { recursive: true, force: true })]);
    const [api1Port, api2Port, pspPort] = [await freePort(), await freePort(), await freePort()];
    pspUrl = `http://127.0.0.1:${pspPort}`;
    const env: Record<string, string> = {
      DATABASE_URL: postgres.url, REDIS_URL: redis.url, REDIS_KEY_PREFIX: redis.prefix, AMQP_URL: rabbit.url, AMQP_PREFIX: rabbit.prefix,
      ...secrets,
      PSP_URL: pspUrl, PSP_PUBLIC_URL: pspUrl, PSP_PORT: String(pspPort), PSP_DATA_DIR: pspDir,
      PSP_WEBHOOK_URL: `http://127.0.0.1:${api1Port}/v1/payments/webhook`,
      RATE_LIMIT_IP_MAX: '1000000', RATE_LIMIT_USER_MAX: '1000000', MAX_EVENT_LOOP_DELAY_MS: '0',
      LOG_LEVEL: 'warn', BROKER_POLL_MS: '50', SWEEPER_INTERVAL_MS: '1000', PAYMENT_GRACE_S: '1',
      DATABASE_POOL_SIZE: '8',
    };

    // The queues and exchanges the processes declare, named exactly as their brokers name them: a
    // system built from the same settings (never started) subscribes every component's consumers.
    const probe = await buildSystem(loadConfig({ ...env, LOG_LEVEL: 'silent', DATABASE_POOL_SIZE: '1' }));
    const topology: Topology = (probe.broker as RabbitMqBroker).topology();
    await probe.close();
    cleanups.push(['delete the RabbitMQ queues and exchanges', () => deleteTopologies(rabbit.url, [topology])]);

    const api = (port: number) => {
      const url = `http://127.0.0.1:${port}`;
      return startCliProcess(['api'], { ...env, PORT: String(port) }, { ready: { http: `${url}/ready` }, url, timeoutMs: 120_000 });
    };
    // Workers log 'worker is up' at info once their consumers and relay run; they have no HTTP port.
    const worker = (components: string) =>
      startCliProcess(['worker', '--components', components], { ...env, LOG_LEVEL: 'info' }, { ready: { log: 'worker is up' }, timeoutMs: 120_000 });
    const started = await Promise.allSettled([
      startCliProcess(['psp'], env, { ready: { http: `${pspUrl}/health` }, url: pspUrl, timeoutMs: 120_000 }),
      api(api1Port),
      api(api2Port),
      worker('inventory,order'),
      worker('payment,fulfillment,notification'),
    ]);
    for (const s of started) if (s.status === 'fulfilled') children.push(s.value);
    const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed) throw failed.reason;
    apis = [children[1]!, children[2]!];
  });

  after(async () => {
    const problems: string[] = [];
    await Promise.all(clients.map((c) => c.close().catch(() => {})));
    const exits = await Promise.all(children.map((c) => stopProcess(c, 10_000)));
    exits.forEach((how, i) => {
      if (how !== '0') problems.push(`flashsale ${children[i]!.name} exited with ${how}`);
    });
    for (const [what, cleanup] of cleanups.reverse()) {
      try {
        await cleanup();
      } catch (error) {
        problems.push(`could not ${what}: ${String(error)}`);
      }
    }
    assert.deepEqual(problems, [], 'every process shuts down cleanly on SIGTERM and the engines are cleaned up');
  });

  function client(url: string, connections: number): HttpClient {
    const c = httpClient(url, connections);
    clients.push(c);
    return c;
  }

  function buyer(): { userId: string; token: string } {
    const userId = randomUUID();
    return { userId, token: tokens.issue({ userId, role: 'buyer' }) };
  }

  async function count(sql: string, params: unknown[]): Promise<number> {
    const [row] = await db.query<{ n: number | string }>(sql, params);
    return Number(row?.n);
  }

  it('when 3,000 buyers race for 200 units over both APIs, half pay and half expire, then exactly 200 orders, 100 PAID, 100 EXPIRED, the stock is back on sale and the audit is clean', async (t) => {
    const [api1, api2] = apis;
    const t0 = performance.now();
    const setup = client(api1.url, 4);
    const email = `m-${randomUUID()}@multi.test`;
    const merchant = await setup.request('POST', '/v1/admin/merchants', { token: admin, body: { email, password: 'merchant-password', shopName: 'Multi' } });
    assert.equal(merchant.status, 201, JSON.stringify(merchant.body));
    const login = await setup.request('POST', '/v1/auth/login', { body: { email, password: 'merchant-password' } });
    assert.equal(login.status, 200, JSON.stringify(login.body));
    const product = await setup.request('POST', '/v1/products', { token: login.body.token, body: { name: 'Console', price: 50_000, currency: 'USD' } });
    assert.equal(product.status, 201, JSON.stringify(product.body));
    const now = Date.now();
    const sale = await setup.request('POST', '/v1/flash-sales', {
      token: login.body.token,
      body: {
        name: 'Many processes', startsAt: new Date(now - 1000).toISOString(), endsAt: new Date(now + 3600_000).toISOString(), paymentWindowS: WINDOW_S,
        items: [{ productId: product.body.id, flashPrice: 25_000, stock: STOCK, perUserLimit: 1 }],
      },
    });
    assert.equal(sale.status, 201, JSON.stringify(sale.body));
    const saleId: string = sale.body.id;
    const itemId: string = sale.body.items[0].id;

    // The burst, alternating between the APIs. Every other winner pays at once, as a buyer would:
    // through the other API (the order was written by another process), then Pay on the hosted page.
    const burst = [client(api1.url, 128), client(api2.url, 128)] as const;
    const payVia = [client(api1.url, 16), client(api2.url, 16)] as const;
    const buyers = Array.from({ length: BUYERS }, buyer);
    // Each API reads the sale once before the crowd, as a watching page would: the API that did not
    // create it would otherwise load it during the burst, while the other one sells every unit.
    for (const api of burst) assert.equal((await api.request('GET', `/v1/flash-sales/${saleId}`)).status, 200);
    const payments: Array<Promise<{ orderId: string; status: number; body: unknown; click?: number; ms: number }>> = [];
    let winners = 0;
    const responses = await runConcurrently(BUYERS, 300, async (i): Promise<HttpResponse> => {
      const side = i % 2;
      const res = await burst[side]!.request('POST', '/v1/orders', { token: buyers[i]!.token, body: { items: [{ saleItemId: itemId, quantity: 1 }] } });
      if (res.status === 201 && winners++ % 2 === 0) {
        const orderId: string = res.body.id;
        const placed = performance.now();
        payments.push((async () => {
          const payment = await payVia[1 - side]!.request('POST', `/v1/orders/${orderId}/payment`, { token: buyers[i]!.token });
          if (payment.status !== 201) return { orderId, status: payment.status, body: payment.body, ms: performance.now() - placed };
          const click = await fetch(`${pspUrl}/pay/${payment.body.providerPaymentId}/pay`, { method: 'POST', redirect: 'manual' });
          await click.arrayBuffer();
          return { orderId, status: payment.status, body: payment.body, click: click.status, ms: performance.now() - placed };
        })().catch((error: unknown) => ({ orderId, status: 0, body: String(error), ms: performance.now() - placed })));
      }
      return res;
    });
    const outcomes = countBy(responses, (r) => (r.status === 201 ? 'created' : `${r.status} ${r.body?.error?.code}`));
    assert.deepEqual(outcomes, { created: STOCK, '409 sold_out': BUYERS - STOCK });
    const winnersByApi = countBy(responses.map((r, i) => ({ r, i })).filter((x) => x.r.status === 201), (x) => (x.i % 2 === 0 ? 'api1' : 'api2'));
    assert.ok((winnersByApi.api1 ?? 0) > 0 && (winnersByApi.api2 ?? 0) > 0, `both APIs sold: ${JSON.stringify(winnersByApi)}`);
    // The dashboard's numbers, from either API: the sale's attempts over both (added up in Redis), and
    // every consumer group's queue, though an API consumes none of them.
    let stats: HttpResponse[] = [];
    await until(async () => {
      stats = await Promise.all(burst.map((api) => api.request('GET', `/v1/admin/stats?saleId=${saleId}`, { token: admin })));
      return stats.every((s) => s.body?.attemptsScope === 'all-processes' && s.body.attempts.accepted === STOCK && s.body.attempts.sold_out === BUYERS - STOCK);
    }, 'both APIs to report all the sale’s attempts', 10_000).catch((error: Error) => {
      throw new Error(`${error.message}: ${JSON.stringify(stats.map((s) => s.body?.attempts))}`);
    });
    for (const s of stats) assert.ok(s.body.queues.some((q: { consumer: string }) => q.consumer === 'notifications'), JSON.stringify(s.body.queues));
    assert.equal(await count('select count(*) as n from orders where sale_id = $1', [saleId]), STOCK, 'exactly one order per unit, in the database');
    const [first] = await db.query<{ expires_at: Date }>('select min(expires_at) as expires_at from orders where sale_id = $1', [saleId]);
    assert.ok(Date.now() < first!.expires_at.getTime(), `the burst outlasted the first payment deadline: raise WINDOW_S (${WINDOW_S} s)`);

    const paid = await Promise.all(payments);
    const slowest = Math.max(...paid.map((p) => p.ms));
    // One unpaid winner watches their order on the API that did not take it: a worker will expire it.
    const paidIds0 = new Set(paid.map((p) => p.orderId));
    const unpaid0 = responses.map((r, i) => ({ r, i })).find((x) => x.r.status === 201 && !paidIds0.has(x.r.body.id))!;
    const watcher = await openStream(`${(unpaid0.i % 2 === 0 ? api2 : api1).url}/v1/orders/${unpaid0.r.body.id}/live`, { event: 'order', token: buyers[unpaid0.i]!.token });
    assert.equal((await watcher.next()).status, 'PENDING_PAYMENT');
    assert.equal(paid.length, STOCK / 2);
    const unpaid = paid.filter((p) => p.status !== 201 || p.click === undefined || p.click >= 400);
    assert.deepEqual(unpaid, [], `every payment went through within the ${WINDOW_S} s window (slowest: ${Math.round(slowest)} ms after its order)`);
    const burstDone = performance.now();

    // The deadlines pass on the real clock: the order worker expires the unpaid half (close check at
    // the deadline, again after the grace, and the sweeper), and the webhooks make the other half PAID.
    const byStatus = async () => Object.fromEntries((await db.query<{ status: string; n: string }>(
      'select status, count(*) as n from orders where sale_id = $1 group by status order by status', [saleId],
    )).map((r) => [r.status, Number(r.n)]));
    await until(async () => {
      const s = await byStatus();
      return s.PAID === STOCK / 2 && s.EXPIRED === STOCK / 2;
    }, '100 orders PAID and 100 EXPIRED', 60_000).catch(async (error: Error) => {
      throw new Error(`${error.message}; finally ${JSON.stringify(await byStatus())}`);
    });
    assert.equal((await watcher.next(10_000)).status, 'EXPIRED', 'the order page is told, by the API it is connected to, of the expiry a worker applied');
    watcher.close();
    const paidIds = new Set((await db.query<{ id: string }>(`select id from orders where sale_id = $1 and status = 'PAID'`, [saleId])).map((r) => r.id));
    assert.deepEqual(paidIds, new Set(paid.map((p) => p.orderId)), 'the PAID orders are exactly the ones paid for');
    const settled = performance.now();

    // The expired half's units are back on sale: in the database, and in the gate the other API reads.
    await until(async () => (await count('select available as n from stock_items where sale_item_id = $1', [itemId])) === STOCK / 2, 'stock_items.available back to 100', 30_000);
    const [stock] = await db.query<{ available: number; held: number; sold: number; initial: number }>('select available, held, sold, initial from stock_items where sale_item_id = $1', [itemId]);
    assert.deepEqual({ ...stock }, { available: 100, held: 0, sold: 100, initial: STOCK });
    let remaining: unknown;
    await until(async () => {
      const res = await burst[1].request('GET', `/v1/flash-sales/${saleId}`);
      remaining = res.body?.items?.[0]?.remaining;
      return res.status === 200 && remaining === STOCK / 2;
    }, 'API #2 to show 100 remaining', 30_000).catch((error: Error) => {
      throw new Error(`${error.message} (last: ${String(remaining)})`);
    });

    // The audit, asked of API #1: clean once every message has been delivered.
    let report: HttpResponse | undefined;
    await until(async () => {
      report = await setup.request('GET', '/v1/admin/audit?quiet=true', { token: admin });
      return report.status === 200;
    }, 'a clean audit', 30_000).catch(() => {});
    assert.equal(report?.status, 200, JSON.stringify(report?.body));
    assert.equal(report!.body.ok, true);
    assert.deepEqual(report!.body.violations, []);

    // The released units sell again, through the other API, to new buyers: exactly 100.
    const late = Array.from({ length: 300 }, buyer);
    const again = await runConcurrently(late.length, 100, (i) =>
      burst[1].request('POST', '/v1/orders', { token: late[i]!.token, body: { items: [{ saleItemId: itemId, quantity: 1 }] } }));
    assert.deepEqual(countBy(again, (r) => (r.status === 201 ? 'created' : `${r.status} ${r.body?.error?.code}`)), { created: 100, '409 sold_out': 200 });
    assert.equal(await count(`select count(*) as n from orders where sale_id = $1 and status = 'PENDING_PAYMENT'`, [saleId]), 100);
    const end = performance.now();
    t.diagnostic(`setup and burst ${Math.round(burstDone - t0)} ms (slowest payment ${Math.round(slowest)} ms after its order), ` +
      `PAID/EXPIRED after ${Math.round(settled - burstDone)} ms more, the rest ${Math.round(end - settled)} ms`);
  });
});
