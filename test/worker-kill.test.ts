import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { buildSystem } from '../src/app.ts';
import { TokenService } from '../src/platform/tokens.ts';
import { freshAmqpPrefix, freshPostgres, freshRedisPrefix } from './support/engines.ts';
import { countBy, httpClient, runConcurrently, testConfig, until } from './support/harness.ts';
import { freePort, startCliProcess, stopProcess, type CliProcess } from './support/process.ts';

const SECRET = 'worker-kill-test-secret-0123456789';
const ORDERS = 1000;

/**
 * Workers die without warning (OOM, node drain). Two notification workers share the queue; one is
 * SIGKILLed three times while 1,000 orders' events flow and restarted each time. Every message must be
 * redelivered and applied once: exactly one notification per order, nothing dead-lettered.
 */
describe('a worker SIGKILLed mid-message, repeatedly', { timeout: 240_000 }, () => {
  const children: CliProcess[] = [];
  const cleanups: Array<() => Promise<unknown>> = [];
  after(async () => {
    for (const child of children) await stopProcess(child, 5000).catch(() => {});
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
  });

  it('when one of two workers is killed three times during a stream, then every event is applied exactly once', async () => {
    const postgres = await freshPostgres();
    const redis = await freshRedisPrefix();
    const rabbit = await freshAmqpPrefix();
    cleanups.push(() => postgres.drop(), () => redis.drop());
    const apiPort = await freePort();
    const env: Record<string, string> = {
      DATABASE_URL: postgres.url, REDIS_URL: redis.url, REDIS_KEY_PREFIX: redis.prefix, AMQP_URL: rabbit.url, AMQP_PREFIX: rabbit.prefix,
      JWT_SECRET: SECRET, PORT: String(apiPort), PSP_URL: 'http://127.0.0.1:9', SEED_DEMO: 'false', LOG_LEVEL: 'info', DATABASE_POOL_SIZE: '6',
      RATE_LIMIT_IP_MAX: '1000000', RATE_LIMIT_USER_MAX: '1000000', MAX_EVENT_LOOP_DELAY_MS: '0', BROKER_POLL_MS: '50', AMQP_PREFETCH: '8',
    };
    // Topology names for cleanup, from a system that is built but never started.
    const probe = await buildSystem(testConfig({ DATABASE_URL: postgres.url, AMQP_URL: rabbit.url, AMQP_PREFIX: rabbit.prefix }));
    cleanups.push(() => rabbit.drop([probe.broker]));
    await probe.close();

    const worker = () => startCliProcess(['worker', '--components', 'notification'], env, { ready: { log: 'worker is up' }, timeoutMs: 60_000 });
    const api = await startCliProcess(['api'], env, { ready: { http: `http://127.0.0.1:${apiPort}/ready` }, url: `http://127.0.0.1:${apiPort}`, timeoutMs: 60_000 });
    children.push(api);
    let victim = await worker();
    children.push(victim, await worker());

    const tokens = new TokenService(SECRET, 3600);
    const http = httpClient(api.url, 32);
    const admin = tokens.issue({ userId: randomUUID(), role: 'admin' });
    await http.request('POST', '/v1/admin/merchants', { token: admin, body: { email: 'm@kill.test', password: 'merchant-password', shopName: 'Kill' } });
    const merchant = (await http.request('POST', '/v1/auth/login', { body: { email: 'm@kill.test', password: 'merchant-password' } })).body.token;
    const product = (await http.request('POST', '/v1/products', { token: merchant, body: { name: 'Thing', price: 1000, currency: 'USD' } })).body;
    const sale = (await http.request('POST', '/v1/flash-sales', {
      token: merchant,
      body: { name: 'Kill sale', startsAt: new Date(Date.now() - 1000).toISOString(), endsAt: new Date(Date.now() + 3600_000).toISOString(), items: [{ productId: product.id, flashPrice: 500, stock: ORDERS, perUserLimit: 1 }] },
    })).body;

    const buyers = Array.from({ length: ORDERS }, () => randomUUID());
    const placing = runConcurrently(ORDERS, 20, (i) =>
      http.request('POST', '/v1/orders', { token: tokens.issue({ userId: buyers[i]!, role: 'buyer' }), body: { items: [{ saleItemId: sale.items[0].id, quantity: 1 }] } }));
    const notified = async () => Number((await postgres.db.query<{ n: number }>(`select count(*) as n from notifications where kind = 'order_placed'`))[0]!.n);
    for (let kill = 1; kill <= 3; kill++) {
      // Kill once the stream is visibly being processed, so the worker is mid-way through it.
      const before = await notified();
      await until(async () => (await notified()) > before + 10, `progress before kill ${kill}`, 60_000);
      assert.ok((await notified()) < ORDERS, `kill ${kill} must land while events are still flowing`);
      victim.child.kill('SIGKILL');
      assert.equal(await victim.exited, 'SIGKILL');
      victim = await worker();
      children.push(victim);
    }
    const placed = await placing;
    assert.deepEqual(countBy(placed, (r) => String(r.status)), { 201: ORDERS });
    await http.close();

    await until(async () => (await notified()) === ORDERS, 'a notification for every order', 120_000);
    const perOrder = await postgres.db.query<{ event_id: string; n: number }>(
      `select event_id, count(*) as n from notifications where kind = 'order_placed' group by event_id having count(*) > 1`);
    assert.deepEqual(perOrder, [], 'no event notified twice');
    const users = await postgres.db.query<{ n: number }>(`select count(distinct user_id) as n from notifications where kind = 'order_placed'`);
    assert.equal(users[0]!.n, ORDERS);
    assert.equal((await postgres.db.query(`select 1 from dead_letters`)).length, 0, 'nothing dead-lettered');
    const audit = await fetch(`${api.url}/v1/admin/audit?quiet=false`, { headers: { authorization: `Bearer ${admin}` } });
    assert.equal(audit.status, 200, await audit.text());
  });
});
