import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ManualClock } from '../src/platform/clock.ts';
import type { OrderCreated } from '../src/order/contracts.ts';
import { startHarness, type Harness } from './support/harness.ts';

describe('a poison message', () => {
  let h: Harness;
  const clock = new ManualClock(Date.now());
  before(async () => { h = await startHarness({ clock, config: { BROKER_MAX_ATTEMPTS: 4, BROKER_BACKOFF_BASE_MS: 1000 } }); });
  after(() => h.close());

  it('when a consumer always fails on one order, then it is dead-lettered after N attempts, the others flow, and a replay after the fix applies once', async () => {
    const { sale } = await h.createSale({ items: [{ stock: 10 }] });
    const buyers = [h.buyerToken(), h.buyerToken(), h.buyerToken()];
    const poisonedBuyer = buyers[1]!.userId;
    let fixed = false;
    const handled: string[] = [];
    const attempts = new Map<string, number>();
    h.system.broker.consume('shipping-labels', ['order.created'], async (tx, message) => {
      const { orderId, userId } = message.payload as OrderCreated;
      attempts.set(orderId, message.attempt);
      if (userId === poisonedBuyer && !fixed) throw new Error(`label printer rejects order ${orderId}`);
      await tx.query('select 1');
      handled.push(orderId);
    });
    const orders: string[] = [];
    for (const buyer of buyers) {
      const res = await h.http.request('POST', '/v1/orders', { token: buyer.token, body: { items: [{ saleItemId: sale.items[0]!.id, quantity: 1 }] } });
      orders.push(res.body.id);
    }
    const poisoned = orders[1]!;
    for (let round = 0; round < 6; round++) {
      await h.system.broker.drain();
      clock.advance(10_000);
    }
    assert.deepEqual(handled.sort(), [orders[0], orders[2]].sort());
    assert.equal(attempts.get(poisoned), 4);
    const admin = h.adminToken();
    const list = await h.http.request('GET', '/v1/admin/dead-letters', { token: admin });
    const letter = list.body.deadLetters.find((d: { consumer: string; payload: OrderCreated }) => d.consumer === 'shipping-labels' && d.payload.orderId === poisoned);
    assert.ok(letter, JSON.stringify(list.body));
    assert.equal(letter.attempts, 4);
    assert.match(letter.lastError, /label printer rejects/);
    const audit = await h.http.request('GET', '/v1/admin/audit', { token: admin });
    assert.ok(audit.body.violations.some((v: { check: string }) => v.check === 'no_dead_letters'), 'the audit flags dead letters');
    fixed = true;
    const replay = await h.http.request('POST', `/v1/admin/dead-letters/shipping-labels/${letter.messageId}/replay`, { token: admin });
    assert.equal(replay.status, 202);
    await h.system.broker.drain();
    assert.equal(handled.filter((id) => id === poisoned).length, 1);
    const again = await h.http.request('POST', `/v1/admin/dead-letters/shipping-labels/${letter.messageId}/replay`, { token: admin });
    assert.equal(again.status, 404, 'a replayed letter is no longer dead');
    await h.system.broker.drain();
    assert.equal(handled.filter((id) => id === poisoned).length, 1, 'replayed once, applied once');
  });
});
