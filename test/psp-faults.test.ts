import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ManualClock } from '../src/platform/clock.ts';
import { countBy, runConcurrently, scalar, startHarness, until, type Harness } from './support/harness.ts';

/**
 * 200 orders against a provider that drops 30% and duplicates 20% of its webhooks: the close check
 * must find every payment the webhooks lost, and nothing may be applied twice.
 */
describe('payments through a faulty provider', () => {
  let h: Harness;
  const clock = new ManualClock(Date.now());
  before(async () => {
    h = await startHarness({ clock, config: { PSP_WEBHOOK_DROP_RATE: 0.3, PSP_WEBHOOK_DUPLICATE_RATE: 0.2, PSP_SEED: 7, PAYMENT_GRACE_S: 30 } });
  });
  after(() => h.close());

  it('when 30% of webhooks are dropped and 20% duplicated over 200 orders, then every paid order is PAID once, every unpaid one EXPIRED, and the audit is clean', async () => {
    const { sale } = await h.createSale({ items: [{ stock: 200 }], paymentWindowS: 120 });
    const buyers = Array.from({ length: 200 }, () => h.buyerToken());
    const placed = await runConcurrently(200, 50, (i) =>
      h.http.request('POST', '/v1/orders', { token: buyers[i]!.token, body: { items: [{ saleItemId: sale.items[0]!.id, quantity: 1 }] } }));
    assert.deepEqual(countBy(placed, (r) => String(r.status)), { 201: 200 });
    const payers = new Set(Array.from({ length: 200 }, (_, i) => i).filter((i) => i % 5 !== 0 && i % 7 !== 0));
    await runConcurrently(200, 20, async (i) => {
      if (!payers.has(i)) return;
      const payment = await h.http.request('POST', `/v1/orders/${placed[i]!.body.id}/payment`, { token: buyers[i]!.token });
      assert.equal(payment.status, 201, JSON.stringify(payment.body));
      const click = await fetch(`${h.pspUrl}/pay/${payment.body.providerPaymentId}/pay`, { method: 'POST', redirect: 'manual' });
      assert.ok(click.status < 400);
    });
    // Let the webhooks that were not dropped land (the simulator records every send it made).
    await until(async () => {
      const res = await fetch(`${h.pspUrl}/_sim/events?type=payment_intent.succeeded`, { headers: { authorization: `Bearer ${h.system.config.PSP_API_KEY}` } });
      const list = (await res.json()) as { data: Array<{ status: string }> };
      return list.data.length === payers.size && list.data.every((e) => e.status !== 'pending');
    }, 'the simulator to finish sending webhooks', 30_000);
    await h.system.broker.drain();
    const paidByWebhook = await scalar(h.system, `select count(*) from orders where sale_id = $1 and status = 'PAID'`, [sale.id]);
    assert.ok(paidByWebhook < payers.size, `drops must leave some orders unpaid before the deadline (${paidByWebhook}/${payers.size})`);

    clock.advance(121_000);
    await h.system.broker.drain();
    clock.advance(31_000);
    await h.system.broker.drain();
    const statuses = await h.system.db.query<{ id: string; status: string }>('select id, status from orders where sale_id = $1', [sale.id]);
    const byId = new Map(statuses.map((r) => [r.id, r.status]));
    placed.forEach((res, i) => assert.equal(byId.get(res.body.id), payers.has(i) ? 'PAID' : 'EXPIRED', `buyer ${i}`));
    assert.equal(await scalar(h.system, `select count(*) from payments p join orders o on o.id = p.order_id where o.sale_id = $1 and p.status = 'succeeded'`, [sale.id]), payers.size);
    assert.equal(await scalar(h.system, 'select count(*) from refunds'), 0);
    const duplicates = await scalar(h.system, `select count(*) - count(distinct event_id) from webhook_events`);
    assert.equal(duplicates, 0);
    assert.deepEqual((await h.system.audit({ quiet: true })).violations, []);
    assert.equal(await h.system.inventory.available(sale.items[0]!.id), 200 - payers.size);
  });
});
