import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { startHarness, type Harness } from './support/harness.ts';

/** The audit is only worth something if it can fail: each test breaks the books on purpose. */
describe('the audit catches corruption', () => {
  let h: Harness;
  before(async () => { h = await startHarness(); });
  after(() => h.close());

  async function saleWithOrder(stock = 5) {
    const { sale } = await h.createSale({ items: [{ stock, perUserLimit: 2 }] });
    const buyer = h.buyerToken();
    const placed = await h.http.request('POST', '/v1/orders', { token: buyer.token, body: { items: [{ saleItemId: sale.items[0]!.id, quantity: 1 }] } });
    assert.equal(placed.status, 201);
    await h.system.broker.drain();
    return { itemId: sale.items[0]!.id, orderId: placed.body.id as string, holdId: placed.body.items[0].holdId as string, buyer };
  }

  async function checks(): Promise<string[]> {
    await h.system.broker.drain();
    const report = await h.system.audit({ quiet: true });
    return [...new Set(report.violations.map((v) => v.check))].sort();
  }

  it('when nothing is wrong, then it passes', async () => {
    await saleWithOrder();
    assert.deepEqual(await checks(), []);
  });

  it('when a hold is marked sold behind the stock row\'s back, then held and sold no longer match the holds', async () => {
    const { holdId } = await saleWithOrder();
    await h.system.db.query(`update holds set status = 'sold' where id = $1`, [holdId]);
    const found = await checks();
    assert.ok(found.includes('held_matches_holds') && found.includes('sold_matches_holds'), found.join());
    await h.system.db.query(`update holds set status = 'held' where id = $1`, [holdId]);
    assert.ok(!(await checks()).includes('held_matches_holds'));
  });

  it('when stock is oversold (the guard removed and more sold than exists), then not_oversold and stock_non_negative fail', async () => {
    const { itemId } = await saleWithOrder(1);
    await h.system.db.query('alter table stock_items drop constraint if exists stock_items_available_check');
    await h.system.db.query('alter table stock_items drop constraint if exists stock_items_balanced');
    await h.system.db.query(`update stock_items set available = -1, held = held + 1 where sale_item_id = $1`, [itemId]);
    await h.system.db.query(`insert into holds (id, sale_item_id, user_id, quantity, status, kind, order_id, created_at, expires_at)
      select gen_random_uuid(), sale_item_id, gen_random_uuid(), 1, 'held', 'cart', null, now(), now() + interval '1 hour' from stock_items where sale_item_id = $1`, [itemId]);
    const found = await checks();
    for (const check of ['not_oversold', 'stock_non_negative', 'gate_matches_db']) assert.ok(found.includes(check), `${check} in ${found.join()}`);
    await h.system.db.query(`update stock_items set available = 0, held = held - 1 where sale_item_id = $1`, [itemId]);
    await h.system.db.query(`delete from holds where sale_item_id = $1 and kind = 'cart'`, [itemId]);
  });

  it('when the gate drifts from the database, then gate_matches_db fails', async () => {
    const { itemId, buyer } = await saleWithOrder();
    await h.system.gate.release(buyer.userId, [{ saleItemId: itemId, quantity: 1 }]);
    const found = await checks();
    assert.ok(found.includes('gate_matches_db') && found.includes('gate_quota_matches_db'), found.join());
    await h.system.inventory.rebuildGate();
    assert.ok(!(await checks()).includes('gate_matches_db'));
  });

  it('when an order is cancelled without releasing its hold, then hold_matches_order fails', async () => {
    const { orderId } = await saleWithOrder();
    await h.system.db.query(`update orders set status = 'CANCELLED' where id = $1`, [orderId]);
    assert.ok((await checks()).includes('hold_matches_order'));
    await h.system.db.query(`update orders set status = 'PENDING_PAYMENT' where id = $1`, [orderId]);
  });

  it('when a per-user quota disagrees with the holds, then per_user_limit fails', async () => {
    const { itemId, buyer } = await saleWithOrder();
    await h.system.db.query('update purchase_quotas set quantity = 0 where sale_item_id = $1 and user_id = $2', [itemId, buyer.userId]);
    assert.ok((await checks()).includes('per_user_limit'));
    await h.system.db.query('update purchase_quotas set quantity = 1 where sale_item_id = $1 and user_id = $2', [itemId, buyer.userId]);
  });

  it('when an event is stuck undelivered, then events_delivered fails while quiet', async () => {
    const messageId = randomUUID();
    const insertStuck = () => h.system.db.query(`insert into outbox (message_id, topic, payload, created_at, deliver_after) values ($1, 'test.stuck', '{}', now(), now() - interval '1 minute')`, [messageId]);
    if (h.engines === 'embedded') {
      // One process, one connection: stopping the relay is how a row gets stuck. The row is written
      // after the stop, so no relay pass already under way can publish it before the audit looks.
      await h.system.broker.stop();
      await insertStuck();
      const report = await h.system.audit({ quiet: true });
      assert.ok(report.violations.some((v) => v.check === 'events_delivered'));
      await h.system.broker.start();
      await h.system.broker.drain();
      return;
    }
    // PostgreSQL: another session holds the row, so every relay skips it (for update skip locked).
    // The relay may publish a fresh row before the holder locks it; then another row is tried.
    const holder = new pg.Client({ connectionString: h.system.config.DATABASE_URL });
    await holder.connect();
    try {
      for (let tries = 0; ; tries++) {
        const id = tries === 0 ? messageId : randomUUID();
        await holder.query(`insert into outbox (message_id, topic, payload, created_at, deliver_after) values ($1, 'test.stuck', '{}', now(), now() - interval '1 minute')`, [id]);
        await holder.query('begin');
        const [row] = (await holder.query<{ published_at: Date | null }>('select published_at from outbox where message_id = $1 for update', [id])).rows;
        if (row?.published_at === null) break;
        await holder.query('rollback');
        assert.ok(tries < 20, 'the relay published every row before it could be held');
      }
      const report = await h.system.audit({ quiet: true });
      assert.ok(report.violations.some((v) => v.check === 'events_delivered'), JSON.stringify(report.violations));
      await holder.query('rollback');
    } finally {
      await holder.end();
    }
  });

  it('when the admin API runs the audit on broken books, then 409 with the violations; for a buyer, 403', async () => {
    const { orderId } = await saleWithOrder();
    await h.system.db.query(`update orders set status = 'EXPIRED' where id = $1`, [orderId]);
    const res = await h.http.request('GET', '/v1/admin/audit?quiet=true', { token: h.adminToken() });
    assert.equal(res.status, 409);
    assert.equal(res.body.ok, false);
    assert.ok(res.body.violations.some((v: { check: string; ids: string[] }) => v.check === 'hold_matches_order' && v.ids.includes(orderId)));
    assert.equal((await h.http.request('GET', '/v1/admin/audit', { token: h.buyerToken().token })).status, 403);
  });
});
