import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { startHarness, until, type Harness } from '../support/harness.ts';

// On PostgreSQL a purchase batch can wait for the stock-row lock that a cancel holds. The window it
// checks must be read, and compared with the time, after that wait. (PGlite runs one transaction
// at a time, so there the batch cannot start while the cancel holds the lock.)
process.env.FLASHSALE_TEST_ENGINES = 'distributed';

describe('the sale window, read after the stock lock', () => {
  let h: Harness;
  before(async () => { h = await startHarness(); });
  after(() => h?.close());

  it('when a purchase batch waits for the lock of a transaction that closes the window, then the batch is refused', async () => {
    const { sale } = await h.createSale({ items: [{ stock: 10 }] });
    const item = sale.items[0]!.id;
    let locked!: () => void;
    const lockTaken = new Promise<void>((resolve) => { locked = resolve; });
    let release!: () => void;
    const closing = new Promise<void>((resolve) => { release = resolve; });
    // What a cancel does: lock the item's stock row, close its window at its own "now", commit.
    const cancel = h.system.db.transaction(async (tx) => {
      await tx.query('select 1 from stock_items where sale_item_id = $1 for update', [item]);
      locked();
      await closing;
      await tx.query('update stock_items set on_sale_until = $2 where sale_item_id = $1', [item, new Date()]);
    });
    await lockTaken;
    const purchase = h.system.db.transaction((tx) => h.system.inventory.reserve(tx, [
      { userId: randomUUID(), lines: [{ saleItemId: item, quantity: 1 }], kind: 'order', orderId: randomUUID(), expiresAt: new Date(Date.now() + 600_000) },
    ]));
    // The purchase now waits for the lock (PostgreSQL says so); its clock must not have been read yet.
    await until(async () => (await h.system.db.query<{ n: number }>(`select count(*)::int as n from pg_locks where not granted`))[0]!.n > 0, 'the purchase waits for the lock', 10_000);
    release();
    await cancel;
    const [result] = await purchase;
    assert.deepEqual(result, { ok: false, reason: 'sale_not_active', saleItemId: item });
  });
});
