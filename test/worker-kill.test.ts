import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { TokenService } from '../src/platform/tokens.ts';
import { createSale } from '../bench/targets.ts';
import { distributedRun } from './support/distributed.ts';
import { countBy, httpClient, runConcurrently, until } from './support/harness.ts';
import { startCliProcess, stopProcess, type CliProcess } from './support/process.ts';

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
    const run = await distributedRun(SECRET);
    cleanups.push(() => run.cleanup());
    const { env, apiPort } = run;

    const worker = () => startCliProcess(['worker', '--components', 'notification'], env, { ready: { log: 'worker is up' }, timeoutMs: 60_000 });
    const api = await startCliProcess(['api'], env, { ready: { http: `http://127.0.0.1:${apiPort}/ready` }, url: `http://127.0.0.1:${apiPort}`, timeoutMs: 60_000 });
    children.push(api);
    let victim = await worker();
    children.push(victim, await worker());

    const tokens = new TokenService(SECRET, 3600);
    const http = httpClient(api.url, 32);
    const admin = tokens.issue({ userId: randomUUID(), role: 'admin' });
    const [saleItemId] = (await createSale(api.url, tokens, [{ stock: ORDERS, perUserLimit: 1 }], 900)).itemIds;

    const buyers = Array.from({ length: ORDERS }, () => randomUUID());
    const placing = runConcurrently(ORDERS, 20, (i) =>
      http.request('POST', '/v1/orders', { token: tokens.issue({ userId: buyers[i]!, role: 'buyer' }), body: { items: [{ saleItemId: saleItemId, quantity: 1 }] } }));
    const notified = async () => Number((await run.db.query<{ n: number }>(`select count(*) as n from notifications where kind = 'order_placed'`))[0]!.n);
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
    const perOrder = await run.db.query<{ event_id: string; n: number }>(
      `select event_id, count(*) as n from notifications where kind = 'order_placed' group by event_id having count(*) > 1`);
    assert.deepEqual(perOrder, [], 'no event notified twice');
    const users = await run.db.query<{ n: number }>(`select count(distinct user_id) as n from notifications where kind = 'order_placed'`);
    assert.equal(users[0]!.n, ORDERS);
    assert.equal((await run.db.query(`select 1 from dead_letters`)).length, 0, 'nothing dead-lettered');
    const audit = await fetch(`${api.url}/v1/admin/audit?quiet=false`, { headers: { authorization: `Bearer ${admin}` } });
    assert.equal(audit.status, 200, await audit.text());
  });
});
