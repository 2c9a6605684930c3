import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ManualClock } from '../src/platform/clock.ts';
import { startHarness, until, type Harness } from './support/harness.ts';
import { SUMMARY_RECHECK_MS } from '../src/notification/merchant-notices.ts';

describe('merchant notices and the payment-failed notice', () => {
  let h: Harness;
  const clock = new ManualClock(Date.now());
  before(async () => { h = await startHarness({ clock }); });
  after(() => h.close());

  async function shopNotices(merchantToken: string): Promise<Array<{ kind: string; channel: string; subject: string; body: string }>> {
    const res = await h.http.request('GET', '/v1/shop/notifications?limit=100', { token: merchantToken });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return res.body.notifications;
  }

  async function payAction(token: string, orderId: string, action: 'pay' | 'decline'): Promise<void> {
    const payment = await h.http.request('POST', `/v1/orders/${orderId}/payment`, { token });
    assert.ok(payment.status === 201 || payment.status === 200, JSON.stringify(payment.body));
    const res = await fetch(`${h.pspUrl}/pay/${payment.body.providerPaymentId}/${action}`, { method: 'POST', redirect: 'manual' });
    assert.equal(res.status, 303);
  }

  it('when an item sells out, sells again and sells out again, then its merchant is told once, in the app', async () => {
    const { sale, merchantToken } = await h.createSale({ items: [{ stock: 1 }] });
    const itemId = sale.items[0]!.id;
    const first = h.buyerToken();
    const order = await h.placeOrder(first.token, itemId);
    await h.http.request('POST', `/v1/orders/${order}/cancel`, { token: first.token });
    await h.placeOrder(h.buyerToken().token, itemId);
    await until(async () => {
      await h.system.broker.drain();
      return (await shopNotices(merchantToken)).some((n) => n.kind === 'item_sold_out');
    }, 'the sold-out notice');
    await h.system.broker.drain();
    const soldOut = (await shopNotices(merchantToken)).filter((n) => n.kind === 'item_sold_out');
    assert.deepEqual(soldOut.map((n) => n.channel).sort(), ['email', 'in_app']);
    assert.match(soldOut[0]!.subject, /Sold out: Product 0/);
  });

  it('when stock is added after a sell-out and the item sells out again, then its merchant is told again: once per sell-out', async () => {
    const { sale, merchantToken } = await h.createSale({ items: [{ stock: 1, perUserLimit: 1 }] });
    const itemId = sale.items[0]!.id;
    const soldOutNotices = async () => (await shopNotices(merchantToken)).filter((n) => n.kind === 'item_sold_out' && n.channel === 'in_app');
    await h.placeOrder(h.buyerToken().token, itemId);
    await until(async () => {
      await h.system.broker.drain();
      return (await soldOutNotices()).length === 1;
    }, 'the first sold-out notice');
    const added = await h.http.request('POST', `/v1/flash-sales/${sale.id}/items/${itemId}/stock`, { token: merchantToken, body: { quantity: 1 } });
    assert.equal(added.status, 200, JSON.stringify(added.body));
    await h.placeOrder(h.buyerToken().token, itemId);
    await until(async () => {
      await h.system.broker.drain();
      return (await soldOutNotices()).length === 2;
    }, 'the second sold-out notice');
    await h.system.broker.drain();
    assert.equal((await soldOutNotices()).length, 2);
  });

  it('when a sale is over and its payment windows closed, then its merchant gets one summary: units sold, paid, expired, revenue', async () => {
    const { sale, merchantToken } = await h.createSale({ items: [{ stock: 5, flashPrice: 2_500 }, { stock: 5, flashPrice: 4_000 }], durationMs: 60_000, paymentWindowS: 60 });
    const [itemId, otherId] = sale.items.map((i) => i.id) as [string, string];
    const status = async (token: string, id: string) => (await h.http.request('GET', `/v1/orders/${id}`, { token })).body.status;
    // Paid for both items; the shop cancels the second line (refunded) and ships the first: FULFILLED, 1 unit, USD 25.00.
    const payer = h.buyerToken();
    const placed = await h.http.request('POST', '/v1/orders', { token: payer.token, body: { items: [{ saleItemId: itemId, quantity: 1 }, { saleItemId: otherId, quantity: 1 }] } });
    assert.equal(placed.status, 201, JSON.stringify(placed.body));
    const paid: string = placed.body.id;
    await payAction(payer.token, paid, 'pay');
    // Paid, then cancelled by an admin (refunded): cancelled, no revenue.
    const refundedBuyer = h.buyerToken();
    const refunded = await h.placeOrder(refundedBuyer.token, otherId);
    await payAction(refundedBuyer.token, refunded, 'pay');
    // Never paid: expired.
    await h.placeOrder(h.buyerToken().token, itemId);
    await until(async () => {
      await h.system.broker.drain();
      return (await status(payer.token, paid)) === 'PAID' && (await status(refundedBuyer.token, refunded)) === 'PAID';
    }, 'the payments');
    assert.equal((await h.http.request('POST', `/v1/shop/orders/${paid}/lines/${otherId}/cancel`, { token: merchantToken, body: {} })).status, 200);
    assert.equal((await h.http.request('POST', `/v1/shop/orders/${paid}/shipments`, { token: merchantToken, body: { carrier: 'DHL', trackingNumber: 'SUM-1' } })).status, 201);
    assert.equal((await h.http.request('POST', `/v1/admin/orders/${refunded}/cancel`, { token: h.adminToken(), body: {} })).status, 200);
    assert.equal((await shopNotices(merchantToken)).filter((n) => n.kind === 'sale_ended').length, 0, 'not before the end');

    clock.advance(60_000 + 60_000 + 10_000);
    await until(async () => {
      await h.system.broker.drain();
      if ((await shopNotices(merchantToken)).some((n) => n.kind === 'sale_ended' && n.channel === 'in_app')) return true;
      // The expiry may land after the sale's end was looked at (RabbitMQ): the summary then looks again later.
      clock.advance(SUMMARY_RECHECK_MS);
      return false;
    }, 'the summary', 15_000);
    clock.advance(60_000);
    await h.system.broker.drain();
    const ended = (await shopNotices(merchantToken)).filter((n) => n.kind === 'sale_ended');
    assert.deepEqual(ended.map((n) => n.channel).sort(), ['email', 'in_app'], 'once per channel');
    assert.match(ended[0]!.body, /Units sold: 1\n/);
    assert.match(ended[0]!.body, /Orders: 3 \(paid 1, expired 1, cancelled 1, still pending 0\)/);
    assert.match(ended[0]!.body, /Revenue: USD 25\.00\n/);
  });

  it('when an order is still awaiting payment as the sale ends (its close check cannot reach the provider), then the summary waits for it and tells the final count', async () => {
    const { sale, merchantToken } = await h.createSale({ items: [{ stock: 2 }], durationMs: 60_000, paymentWindowS: 60 });
    const buyer = h.buyerToken();
    const order = await h.placeOrder(buyer.token, sale.items[0]!.id);
    assert.equal((await h.http.request('POST', `/v1/orders/${order}/payment`, { token: buyer.token })).status, 201);
    const knobs = async (values: Record<string, number>) => {
      const res = await fetch(`${h.pspUrl}/_sim/knobs`, {
        method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${h.system.config.PSP_API_KEY}` }, body: JSON.stringify(values),
      });
      assert.equal(res.status, 200, await res.text());
    };
    const summaries = async () => (await shopNotices(merchantToken)).filter((n) => n.kind === 'sale_ended' && n.channel === 'in_app');
    await knobs({ timeoutRate: 1, timeoutMs: 0 });
    try {
      clock.advance(60_000 + 60_000 + 10_000);
      await h.system.broker.drain();
      assert.equal((await h.http.request('GET', `/v1/orders/${order}`, { token: buyer.token })).body.status, 'PENDING_PAYMENT', 'the close check could not ask the provider');
      assert.deepEqual((await summaries()).map((n) => n.body), [], 'no summary while an order may still be paid');
    } finally {
      await knobs({ timeoutRate: 0 });
    }
    await h.system.orders.sweep();
    clock.advance(SUMMARY_RECHECK_MS);
    await until(async () => {
      await h.system.broker.drain();
      return (await summaries()).length > 0;
    }, 'the summary once the order is closed');
    const [summary] = await summaries();
    assert.match(summary!.body, /Orders: 1 \(paid 0, expired 1, cancelled 0, still pending 0\)/);
  });

  it('when a sale is cancelled, then its merchant gets the summary once its pending orders are closed', async () => {
    const { sale, merchantToken } = await h.createSale({ items: [{ stock: 3 }] });
    await h.placeOrder(h.buyerToken().token, sale.items[0]!.id);
    assert.equal((await h.http.request('POST', `/v1/flash-sales/${sale.id}/cancel`, { token: merchantToken })).status, 200);
    await until(async () => {
      await h.system.broker.drain();
      return (await shopNotices(merchantToken)).some((n) => n.kind === 'sale_ended' && n.channel === 'in_app');
    }, 'the summary of the cancelled sale');
    const [summary] = (await shopNotices(merchantToken)).filter((n) => n.kind === 'sale_ended' && n.channel === 'in_app');
    assert.match(summary!.subject, /^Cancelled: /);
    assert.match(summary!.body, /cancelled 1, still pending 0/);
  });

  it('when a payment is declined, then the buyer is told (payment_failed)', async () => {
    const { sale } = await h.createSale({ items: [{ stock: 2 }] });
    const registered = await h.system.accounts.register(`declined-${Date.now()}@test.local`, 'declined-pass-1');
    const token = h.system.tokens.issue({ userId: registered.id, role: 'buyer' });
    const order = await h.placeOrder(token, sale.items[0]!.id);
    await payAction(token, order, 'decline');
    await until(async () => {
      await h.system.broker.drain();
      const res = await h.http.request('GET', '/v1/notifications?limit=100', { token });
      return res.body.notifications.some((n: { kind: string }) => n.kind === 'payment_failed');
    }, 'the payment-failed notice');
  });
});
