import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';
import type { GateItem, StockGate } from './gate.ts';

const NOW = Date.UTC(2030, 0, 1);

function item(overrides: Partial<GateItem> = {}): GateItem {
  return { saleItemId: randomUUID(), available: 10, perUserLimit: 2, startsAt: NOW - 1000, endsAt: NOW + 3600_000, ...overrides };
}

/** The behaviour every StockGate adapter must have. */
export function gateContract(name: string, makeGate: () => Promise<StockGate>): void {
  describe(`StockGate contract: ${name}`, () => {
    it('when a fresh gate is opened, then it is loaded through the rebuild it is given, and ready', async () => {
      const gate = await makeGate();
      const a = item({ available: 4 });
      let rebuilds = 0;
      await gate.open(async () => {
        rebuilds++;
        await gate.load([a], []);
      });
      assert.equal(rebuilds, 1);
      assert.equal(await gate.ready(), true);
      assert.equal(await gate.available(a.saleItemId), 4);
    });

    it('when admitted, then available and the buyer quota go down together', async () => {
      const gate = await makeGate();
      const a = item({ available: 5 });
      await gate.load([a], []);
      const result = await gate.admit('u1', [{ saleItemId: a.saleItemId, quantity: 2 }], NOW);
      assert.deepEqual(result, { ok: true, remaining: [3] });
      assert.equal(await gate.available(a.saleItemId), 3);
      assert.equal(await gate.quota(a.saleItemId, 'u1'), 2);
    });

    it('when the quantity exceeds what is left, then sold_out and nothing changes', async () => {
      const gate = await makeGate();
      const a = item({ available: 1 });
      await gate.load([a], []);
      const result = await gate.admit('u1', [{ saleItemId: a.saleItemId, quantity: 2 }], NOW);
      assert.deepEqual(result, { ok: false, reason: 'sold_out', saleItemId: a.saleItemId, remaining: 1 });
      assert.equal(await gate.available(a.saleItemId), 1);
      assert.equal(await gate.quota(a.saleItemId, 'u1'), 0);
    });

    it('when a buyer would pass the limit, then limit_exceeded, counting what it already holds', async () => {
      const gate = await makeGate();
      const a = item({ perUserLimit: 2 });
      await gate.load([a], [{ saleItemId: a.saleItemId, userId: 'u1', quantity: 1 }]);
      assert.equal((await gate.admit('u1', [{ saleItemId: a.saleItemId, quantity: 1 }], NOW)).ok, true);
      const refused = await gate.admit('u1', [{ saleItemId: a.saleItemId, quantity: 1 }], NOW);
      assert.equal(refused.ok === false && refused.reason, 'limit_exceeded');
      assert.equal((await gate.admit('u2', [{ saleItemId: a.saleItemId, quantity: 2 }], NOW)).ok, true);
    });

    it('when outside the sale window, then sale_not_active; unknown items are refused', async () => {
      const gate = await makeGate();
      const a = item();
      await gate.load([a], []);
      const early = await gate.admit('u1', [{ saleItemId: a.saleItemId, quantity: 1 }], a.startsAt - 1);
      const late = await gate.admit('u1', [{ saleItemId: a.saleItemId, quantity: 1 }], a.endsAt);
      assert.equal(early.ok === false && early.reason, 'sale_not_active');
      assert.equal(late.ok === false && late.reason, 'sale_not_active');
      const unknown = await gate.admit('u1', [{ saleItemId: randomUUID(), quantity: 1 }], NOW);
      assert.equal(unknown.ok === false && unknown.reason, 'unknown_item');
    });

    it('when one line of several fails, then no line is taken', async () => {
      const gate = await makeGate();
      const a = item({ available: 5 });
      const b = item({ available: 0 });
      await gate.load([a, b], []);
      const result = await gate.admit('u1', [{ saleItemId: a.saleItemId, quantity: 1 }, { saleItemId: b.saleItemId, quantity: 1 }], NOW);
      assert.equal(result.ok, false);
      assert.equal(await gate.available(a.saleItemId), 5);
      assert.equal(await gate.quota(a.saleItemId, 'u1'), 0);
    });

    it('when units are released, then they are available again and the quota drops', async () => {
      const gate = await makeGate();
      const a = item({ available: 1, perUserLimit: 1 });
      await gate.load([a], []);
      await gate.admit('u1', [{ saleItemId: a.saleItemId, quantity: 1 }], NOW);
      await gate.release('u1', [{ saleItemId: a.saleItemId, quantity: 1 }]);
      assert.equal(await gate.available(a.saleItemId), 1);
      assert.equal(await gate.quota(a.saleItemId, 'u1'), 0);
      assert.equal((await gate.admit('u1', [{ saleItemId: a.saleItemId, quantity: 1 }], NOW)).ok, true);
    });

    it('when many admissions race, then exactly the stock is admitted', async () => {
      const gate = await makeGate();
      const a = item({ available: 50, perUserLimit: 1 });
      await gate.load([a], []);
      const results = await Promise.all(Array.from({ length: 500 }, (_, i) => gate.admit(`u${i}`, [{ saleItemId: a.saleItemId, quantity: 1 }], NOW)));
      assert.equal(results.filter((r) => r.ok).length, 50);
      assert.equal(await gate.available(a.saleItemId), 0);
    });

    it('when loaded again, then the new state replaces the old', async () => {
      const gate = await makeGate();
      assert.equal(await gate.ready(), false);
      const a = item({ available: 3 });
      await gate.load([a], []);
      assert.equal(await gate.ready(), true);
      await gate.admit('u1', [{ saleItemId: a.saleItemId, quantity: 1 }], NOW);
      await gate.load([{ ...a, available: 7 }], [{ saleItemId: a.saleItemId, userId: 'u9', quantity: 2 }]);
      assert.equal(await gate.available(a.saleItemId), 7);
      assert.equal(await gate.quota(a.saleItemId, 'u1'), 0);
      assert.equal(await gate.quota(a.saleItemId, 'u9'), 2);
    });

    it('when an item is adjusted, then available moves by the delta, admissions in flight stay counted and quotas are kept', async () => {
      const gate = await makeGate();
      const a = item({ available: 3, perUserLimit: 2 });
      await gate.load([a], []);
      await gate.admit('u1', [{ saleItemId: a.saleItemId, quantity: 2 }], NOW);
      await gate.adjust([{ saleItemId: a.saleItemId, availableDelta: 5, perUserLimit: 3, startsAt: a.startsAt, endsAt: a.endsAt }]);
      assert.equal(await gate.available(a.saleItemId), 6);
      assert.equal(await gate.quota(a.saleItemId, 'u1'), 2);
      assert.equal((await gate.admit('u1', [{ saleItemId: a.saleItemId, quantity: 1 }], NOW)).ok, true, 'the raised limit applies');
      await gate.release('u1', [{ saleItemId: a.saleItemId, quantity: 3 }]);
      assert.equal(await gate.available(a.saleItemId), 8);
    });

    it('when an item\'s window is closed by an adjustment, then it admits nobody; an unknown item is skipped', async () => {
      const gate = await makeGate();
      const a = item({ available: 3 });
      await gate.load([a], []);
      await gate.adjust([
        { saleItemId: a.saleItemId, availableDelta: 0, perUserLimit: a.perUserLimit, startsAt: a.startsAt, endsAt: NOW },
        { saleItemId: randomUUID(), availableDelta: 4, perUserLimit: 1, startsAt: a.startsAt, endsAt: a.endsAt },
      ]);
      const refused = await gate.admit('u1', [{ saleItemId: a.saleItemId, quantity: 1 }], NOW);
      assert.equal(refused.ok === false && refused.reason, 'sale_not_active');
      assert.equal(await gate.available(a.saleItemId), 3);
    });

    it('when items are removed, then they are unknown and others are untouched', async () => {
      const gate = await makeGate();
      const a = item();
      const b = item({ available: 2 });
      await gate.load([a, b], []);
      await gate.remove([a.saleItemId]);
      assert.equal(await gate.available(a.saleItemId), undefined);
      const unknown = await gate.admit('u1', [{ saleItemId: a.saleItemId, quantity: 1 }], NOW);
      assert.equal(unknown.ok === false && unknown.reason, 'unknown_item');
      assert.equal(await gate.available(b.saleItemId), 2);
    });
  });
}
