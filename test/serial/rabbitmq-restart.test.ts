import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { TokenService } from '../../src/platform/tokens.ts';
import { createSale } from '../../bench/targets.ts';
import { distributedRun } from '../support/distributed.ts';
import { countBy, httpClient, runConcurrently, until } from '../support/harness.ts';
import { startCliProcess, stopProcess, type CliProcess } from '../support/process.ts';
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
    const run = await distributedRun(SECRET, { PAYMENT_GRACE_S: '1', SWEEPER_INTERVAL_MS: '3600000' });
    cleanups.push(() => run.cleanup());
    const { env, apiPort } = run;

    const api = await startCliProcess(['api'], env, { ready: { http: `http://127.0.0.1:${apiPort}/ready` }, url: `http://127.0.0.1:${apiPort}`, timeoutMs: 60_000 });
    children.push(api);
    children.push(await startCliProcess(['worker'], env, { ready: { log: 'worker is up' }, timeoutMs: 60_000 }));

    const tokens = new TokenService(SECRET, 3600);
    const http = httpClient(api.url, 16);
    const admin = tokens.issue({ userId: randomUUID(), role: 'admin' });
    const [saleItemId] = (await createSale(api.url, tokens, [{ stock: ORDERS, perUserLimit: 1 }], PAYMENT_WINDOW_S)).itemIds;

    const count = async (sql: string) => Number((await run.db.query<{ n: number }>(sql))[0]!.n);
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
    const doubled = await run.db.query(`select user_id, kind, channel from notifications group by user_id, kind, channel having count(*) > 1`);
    assert.deepEqual(doubled, [], 'no notification sent twice');
    assert.equal(await count(`select count(*) as n from dead_letters`), 0, 'nothing dead-lettered');
    const stock = await run.db.query<{ available: number }>(`select available from stock_items where sale_item_id = $1`, [saleItemId]);
    assert.equal(Number(stock[0]!.available), ORDERS, 'all stock back on sale, released once');
    const audit = await fetch(`${api.url}/v1/admin/audit?quiet=false`, { headers: { authorization: `Bearer ${admin}` } });
    assert.equal(audit.status, 200, await audit.text());
  });
});
