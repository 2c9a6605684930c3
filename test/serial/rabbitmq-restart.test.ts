import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { buildSystem } from '../../src/app.ts';
import { TokenService } from '../../src/platform/tokens.ts';
import { freshAmqpPrefix, freshPostgres, freshRedisPrefix } from '../support/engines.ts';
import { countBy, httpClient, runConcurrently, testConfig, until } from '../support/harness.ts';
import { freePort, startCliProcess, stopProcess, type CliProcess } from '../support/process.ts';
import { startRabbitMq, stopRabbitMq } from '../support/rabbitmq-control.ts';

const SECRET = 'rabbit-restart-test-secret-0123456789';
const ORDERS = 600;
const PAYMENT_WINDOW_S = 20;

/**
 * RabbitMQ restarted while orders stream in. The API keeps accepting (its outbox is in
 * PostgreSQL), the relay and the worker reconnect by themselves, and afterwards every event is
 * applied exactly once — including the payment-deadline messages that were waiting in delay
 * queues across the restart: every unpaid order expires once and the stock comes back whole.
 */
describe('RabbitMQ restarted mid-run', { timeout: 300_000 }, () => {
  const children: CliProcess[] = [];
  const cleanups: Array<() => Promise<unknown>> = [];
  after(async () => {
    await startRabbitMq().catch(() => {});
    for (const child of children) await stopProcess(child, 5000).catch(() => {});
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
  });

  it('when the broker goes away for a few seconds during a stream of orders, then nothing is lost or doubled and every deadline still fires once', async () => {
    const postgres = await freshPostgres();
    const redis = await freshRedisPrefix();
    const rabbit = await freshAmqpPrefix();
    cleanups.push(() => postgres.drop(), () => redis.drop());
    const apiPort = await freePort();
    const env: Record<string, string> = {
      DATABASE_URL: postgres.url, REDIS_URL: redis.url, REDIS_KEY_PREFIX: redis.prefix, AMQP_URL: rabbit.url, AMQP_PREFIX: rabbit.prefix,
      JWT_SECRET: SECRET, PORT: String(apiPort), PSP_URL: 'http://127.0.0.1:9', SEED_DEMO: 'false', LOG_LEVEL: 'info', DATABASE_POOL_SIZE: '6',
      RATE_LIMIT_IP_MAX: '1000000', RATE_LIMIT_USER_MAX: '1000000', MAX_EVENT_LOOP_DELAY_MS: '0', BROKER_POLL_MS: '50', AMQP_PREFETCH: '8',
      PAYMENT_GRACE_S: '1', SWEEPER_INTERVAL_MS: '3600000',
    };
    const probe = await buildSystem(testConfig({ DATABASE_URL: postgres.url, AMQP_URL: rabbit.url, AMQP_PREFIX: rabbit.prefix }));
    cleanups.push(() => rabbit.drop([probe.broker]));
    await probe.close();

    const api = await startCliProcess(['api'], env, { ready: { http: `http://127.0.0.1:${apiPort}/ready` }, url: `http://127.0.0.1:${apiPort}`, timeoutMs: 60_000 });
    children.push(api);
    children.push(await startCliProcess(['worker'], env, { ready: { log: 'worker is up' }, timeoutMs: 60_000 }));

    const tokens = new TokenService(SECRET, 3600);
    const http = httpClient(api.url, 16);
    const admin = tokens.issue({ userId: randomUUID(), role: 'admin' });
    await http.request('POST', '/v1/admin/merchants', { token: admin, body: { email: 'm@restart.test', password: 'merchant-password', shopName: 'Restart' } });
    const merchant = (await http.request('POST', '/v1/auth/login', { body: { email: 'm@restart.test', password: 'merchant-password' } })).body.token;
    const product = (await http.request('POST', '/v1/products', { token: merchant, body: { name: 'Thing', price: 1000, currency: 'USD' } })).body;
    const sale = (await http.request('POST', '/v1/flash-sales', {
      token: merchant,
      body: {
        name: 'Restart sale', startsAt: new Date(Date.now() - 1000).toISOString(), endsAt: new Date(Date.now() + 3600_000).toISOString(),
        paymentWindowS: PAYMENT_WINDOW_S, items: [{ productId: product.id, flashPrice: 500, stock: ORDERS, perUserLimit: 1 }],
      },
    })).body;
    const saleItemId: string = sale.items[0].id;

    const count = async (sql: string) => Number((await postgres.db.query<{ n: number }>(sql))[0]!.n);
    const notified = () => count(`select count(*) as n from notifications where kind = 'order_placed'`);
    // Paced so the stream spans the outage: the broker stops while orders are still arriving.
    const placing = runConcurrently(ORDERS, 4, async (i) => {
      const response = await http.request('POST', '/v1/orders', { token: tokens.issue({ userId: randomUUID(), role: 'buyer' }), body: { items: [{ saleItemId, quantity: 1 }] } });
      await new Promise((r) => setTimeout(r, 15));
      return { i, response };
    });
    await until(async () => (await notified()) > 20, 'events flowing before the restart', 60_000);
    await stopRabbitMq();
    const placedDuringOutageFrom = await count(`select count(*) as n from orders`);
    await new Promise((r) => setTimeout(r, 4000)); // the outage itself: nothing to await but time
    const placedDuringOutage = (await count(`select count(*) as n from orders`)) - placedDuringOutageFrom;
    await startRabbitMq();
    const placed = await placing;
    await http.close();

    assert.deepEqual(countBy(placed, ({ response }) => String(response.status)), { 201: ORDERS }, 'every order accepted, broker or not');
    assert.ok(placedDuringOutage > 0, 'orders were accepted while RabbitMQ was down');
    assert.ok((await count(`select count(*) as n from orders`)) === ORDERS);

    await until(async () => (await notified()) === ORDERS, 'a notification for every order', 120_000);
    // Every order was left unpaid: the deadline messages published before, during and after the outage all fire.
    await until(async () => (await count(`select count(*) as n from orders where status = 'EXPIRED'`)) === ORDERS, 'every order expired', 120_000);
    await until(async () => (await count(`select count(*) as n from notifications where kind = 'order_expired'`)) === ORDERS, 'an expiry notice for every order', 60_000);
    const doubled = await postgres.db.query(`select user_id, kind, channel from notifications group by user_id, kind, channel having count(*) > 1`);
    assert.deepEqual(doubled, [], 'no notification sent twice');
    assert.equal(await count(`select count(*) as n from dead_letters`), 0, 'nothing dead-lettered');
    const stock = await postgres.db.query<{ available: number }>(`select available from stock_items where sale_item_id = $1`, [saleItemId]);
    assert.equal(Number(stock[0]!.available), ORDERS, 'all stock back on sale, released once');
    const audit = await fetch(`${api.url}/v1/admin/audit?quiet=false`, { headers: { authorization: `Bearer ${admin}` } });
    assert.equal(audit.status, 200, await audit.text());
  });
});
