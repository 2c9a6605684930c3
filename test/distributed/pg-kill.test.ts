import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { countBy, runConcurrently, startHarness, until, type Harness } from '../support/harness.ts';

process.env.FLASHSALE_TEST_ENGINES = 'distributed';

/**
 * PostgreSQL connections killed under load (pg_terminate_backend, as a failover or an admin does):
 * requests fail cleanly with 503 + Retry-After, never 500; nothing is half-written (every hold has
 * its order, the stock balances); and once the database is back, retried work completes.
 */
describe('PostgreSQL connections killed during a sale', { timeout: 120_000 }, () => {
  let h: Harness;
  let admin: pg.Client;
  before(async () => {
    h = await startHarness();
    admin = new pg.Client({ connectionString: h.system.config.DATABASE_URL });
    await admin.connect();
  });
  after(async () => {
    await admin.end();
    await h.close();
  });

  /** Kills every connection to the test's database but the killer's own; returns how many. */
  async function killConnections(): Promise<number> {
    const { rows } = await admin.query<{ killed: boolean }>(
      'select pg_terminate_backend(pid) as killed from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()');
    return rows.filter((r) => r.killed).length;
  }

  it('when every connection is killed again and again during a burst, then 503s not 500s, nothing half-written, and retries sell exactly the stock', async () => {
    const STOCK = 300;
    const { sale } = await h.createSale({ items: [{ stock: STOCK, perUserLimit: 1 }] });
    const item = sale.items[0]!.id;
    const buyers = Array.from({ length: 900 }, () => h.buyerToken());
    const buy = (i: number) => h.http.request('POST', '/v1/orders', { token: buyers[i]!.token, body: { items: [{ saleItemId: item, quantity: 1 }] } });

    let killing = true;
    let killed = 0;
    const killer = (async () => {
      while (killing) {
        killed += await killConnections();
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    const during = await runConcurrently(buyers.length, 64, buy);
    killing = false;
    await killer;
    assert.ok(killed > 0, 'connections were killed during the burst');

    const outcomes = countBy(during, (r) => (r.status === 201 ? '201' : `${r.status} ${r.body?.error?.code}`));
    console.log('while connections were killed:', JSON.stringify(outcomes), 'killed:', killed);
    assert.deepEqual(Object.keys(outcomes).filter((k) => !['201', '409 sold_out', '503 unavailable', '503 overloaded'].includes(k)), [], JSON.stringify(outcomes));
    for (const r of during.filter((x) => x.status === 503)) assert.ok(Number(r.headers['retry-after']) > 0, 'a 503 says when to retry');
    assert.ok((outcomes['503 unavailable'] ?? 0) > 0, 'the kills were felt by some buyers');

    // The buyers told to retry do so; a buyer whose commit landed before its connection died gets
    // limit_exceeded (its order exists), everyone else an answer on the restored database.
    const retried = during.map((r, i) => (r.status === 503 ? i : -1)).filter((i) => i >= 0);
    let pending = retried;
    for (let round = 0; pending.length > 0; round++) {
      assert.ok(round < 20, `${pending.length} buyers still refused with 503 after 20 rounds`);
      const answers = await runConcurrently(pending.length, 32, (k) => buy(pending[k]!));
      for (const a of answers) assert.ok([201, 409, 503].includes(a.status), `retry answered ${a.status} ${JSON.stringify(a.body)}`);
      pending = pending.filter((_, k) => answers[k]!.status === 503);
    }

    let last: unknown;
    await until(async () => {
      await h.system.broker.drain();
      const report = await h.system.audit({ quiet: true });
      last = report.violations;
      return report.ok;
    }, 'the books to balance once the database is back', 60_000).catch(async (error: Error) => {
      const dead = (await h.system.broker.listDeadLetters(5)).map((d) => ({ consumer: d.consumer, topic: d.topic, attempts: d.attempts, error: d.lastError }));
      throw new Error(`${error.message}; the audit's last violations: ${JSON.stringify(last).slice(0, 1000)}; dead letters: ${JSON.stringify(dead).slice(0, 2000)}`);
    });
    const [row] = await h.system.db.query<{ sold: number; held: number; available: number }>('select sold, held, available from stock_items where sale_item_id = $1', [item]);
    assert.equal(row!.held + row!.sold, STOCK, 'exactly the stock sold: nothing lost to the kills, nothing oversold');
    assert.equal(row!.available, 0);
    const orders = await h.system.db.query<{ n: string }>('select count(*)::text as n from orders o join order_items i on i.order_id = o.id where i.sale_item_id = $1', [item]);
    assert.equal(Number(orders[0]!.n), STOCK, 'one order per held unit');
    assert.deepEqual((await h.system.audit({ quiet: true })).violations, []);
  });
});
