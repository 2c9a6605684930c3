import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { ManualClock } from '../src/platform/clock.ts';
import { scalar, startHarness, until, type Harness } from './support/harness.ts';

/** The order saga (docs/architecture.md, "The order saga") end to end: real PSP simulator over HTTP, signed webhooks, an injected clock. */
describe('the order lifecycle', () => {
  let h: Harness;
  const clock = new ManualClock(Date.now());
  const WINDOW_S = 300;
  before(async () => { h = await startHarness({ clock, config: { PAYMENT_GRACE_S: 60 } }); });
  after(() => h.close());

  async function placeOrder(stock = 1) {
    const { sale } = await h.createSale({ items: [{ stock }], paymentWindowS: WINDOW_S });
    const buyer = h.buyerToken();
    const res = await h.http.request('POST', '/v1/orders', { token: buyer.token, body: { items: [{ saleItemId: sale.items[0]!.id, quantity: 1 }] } });
    assert.equal(res.status, 201);
    return { buyer, order: res.body, itemId: sale.items[0]!.id as string };
  }

  async function startPayment(token: string, orderId: string) {
    const res = await h.http.request('POST', `/v1/orders/${orderId}/payment`, { token });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    return res.body as { providerPaymentId: string; hostedUrl: string; status: string };
  }

  /** What the buyer's click on the hosted page does. */
  async function click(intentId: string, action: 'pay' | 'decline') {
    const res = await fetch(`${h.pspUrl}/pay/${intentId}/${action}`, { method: 'POST', redirect: 'manual' });
    assert.ok(res.status < 400, `hosted page ${action} answered ${res.status}`);
  }

  async function status(token: string, orderId: string): Promise<string> {
    return (await h.http.request('GET', `/v1/orders/${orderId}`, { token })).body.status;
  }

  async function settled(token: string, orderId: string, expected: string) {
    await until(async () => {
      await h.system.broker.drain();
      return (await status(token, orderId)) === expected;
    }, `order ${orderId} to be ${expected}`);
  }

  async function pastDeadline(extraS = 1) {
    clock.advance((WINDOW_S + extraS) * 1000);
    await h.system.broker.drain();
  }

  it('when the buyer pays in time, then the order is PAID and its unit sold', async () => {
    const { buyer, order, itemId } = await placeOrder();
    const payment = await startPayment(buyer.token, order.id);
    assert.match(payment.hostedUrl, /\/pay\/pi_/);
    await click(payment.providerPaymentId, 'pay');
    await settled(buyer.token, order.id, 'PAID');
    assert.equal(await scalar(h.system, `select sold from stock_items where sale_item_id = $1`, [itemId]), 1);
    await pastDeadline();
    assert.equal(await status(buyer.token, order.id), 'PAID', 'the deadline leaves a paid order alone');
  });

  it('when the buyer never pays, then at the deadline the order EXPIRES and the unit is bought by someone else', async () => {
    const { buyer, order, itemId } = await placeOrder();
    await startPayment(buyer.token, order.id);
    const other = h.buyerToken();
    const before = await h.http.request('POST', '/v1/orders', { token: other.token, body: { items: [{ saleItemId: itemId, quantity: 1 }] } });
    assert.equal(before.body.error.code, 'sold_out');
    await pastDeadline();
    assert.equal(await status(buyer.token, order.id), 'EXPIRED');
    const afterExpiry = await h.http.request('POST', '/v1/orders', { token: other.token, body: { items: [{ saleItemId: itemId, quantity: 1 }] } });
    assert.equal(afterExpiry.status, 201, 'the released unit is on sale again, sold-out flag cleared');
    const late = await h.http.request('POST', `/v1/orders/${order.id}/payment`, { token: buyer.token });
    assert.equal(late.status, 409);
  });

  it('when a payment is declined and then paid, then the order is PAID once', async () => {
    const { buyer, order } = await placeOrder();
    const payment = await startPayment(buyer.token, order.id);
    await click(payment.providerPaymentId, 'decline');
    await until(async () => (await h.system.db.query(`select 1 from payments where order_id = $1 and status = 'failed'`, [order.id])).length === 1, 'the decline webhook');
    await h.system.broker.drain();
    assert.equal(await status(buyer.token, order.id), 'PENDING_PAYMENT', 'still payable until the deadline');
    const again = await startPayment(buyer.token, order.id);
    assert.equal(again.providerPaymentId, payment.providerPaymentId, 'one provider payment per order');
    await click(payment.providerPaymentId, 'pay');
    await settled(buyer.token, order.id, 'PAID');
    assert.equal(await scalar(h.system, `select count(*) from payments where order_id = $1 and status = 'succeeded'`, [order.id]), 1);
  });

  it('when the payment webhook is lost, then the close check asks the provider and the order is PAID, not expired', async () => {
    const { buyer, order } = await placeOrder();
    const payment = await startPayment(buyer.token, order.id);
    await knobs({ webhookDropRate: 1 });
    await click(payment.providerPaymentId, 'pay');
    await knobs({ webhookDropRate: 0 });
    await h.system.broker.drain();
    assert.equal(await status(buyer.token, order.id), 'PENDING_PAYMENT');
    await pastDeadline();
    await h.system.broker.drain();
    assert.equal(await status(buyer.token, order.id), 'PAID');
  });

  it('when a payment lands for an order that already expired, then it is refunded automatically', async () => {
    const { buyer, order } = await placeOrder();
    await pastDeadline();
    assert.equal(await status(buyer.token, order.id), 'EXPIRED');
    // A stale client (or a crash between creating the intent and recording it) lets money arrive late.
    const intent = await h.system.gateway.createIntent({ amount: order.totalAmount, currency: order.currency, orderId: order.id, idempotencyKey: `late-${order.id}` });
    await click(intent.id, 'pay');
    await until(async () => {
      await h.system.broker.drain();
      return (await scalar(h.system, 'select count(*) from refunds where order_id = $1', [order.id])) === 1;
    }, 'the automatic refund');
    assert.equal(await status(buyer.token, order.id), 'EXPIRED');
    const provider = await fetch(`${h.pspUrl}/v1/payment_intents/${intent.id}`, { headers: { authorization: `Bearer ${h.system.config.PSP_API_KEY}` } });
    assert.equal(provider.status, 200);
  });

  it('when every deadline message is lost, then the sweeper closes the order after window + grace', async () => {
    const { buyer, order, itemId } = await placeOrder();
    await h.system.db.query(`delete from outbox where topic = 'order.deadline' and payload->>'orderId' = $1`, [order.id]);
    clock.advance((WINDOW_S + 61) * 1000);
    await h.system.broker.drain();
    assert.equal(await status(buyer.token, order.id), 'PENDING_PAYMENT', 'no message, nothing happened');
    const swept = await h.system.orders.sweep();
    assert.ok(swept.ordersClosed >= 1);
    assert.equal(await status(buyer.token, order.id), 'EXPIRED');
    assert.equal(await h.system.inventory.available(itemId), 1);
  });

  it('when a cart hold is never checked out, then its expiry message releases it', async () => {
    const { sale } = await h.createSale({ holdMode: 'cart', items: [{ stock: 1 }], paymentWindowS: WINDOW_S });
    const buyer = h.buyerToken();
    const added = await h.http.request('POST', '/v1/cart/items', { token: buyer.token, body: { saleItemId: sale.items[0]!.id, quantity: 1 } });
    assert.equal(added.status, 201);
    clock.advance((WINDOW_S - 1) * 1000);
    await h.system.broker.drain();
    assert.equal(await h.system.inventory.available(sale.items[0]!.id), 0, 'still held before its expiry');
    clock.advance(1000);
    await h.system.broker.drain();
    assert.equal(await h.system.inventory.available(sale.items[0]!.id), 1);
    assert.equal((await h.http.request('POST', '/v1/checkout', { token: buyer.token })).body.error.code, 'cart_empty');
  });

  it('when a cart hold is checked out in time, then its expiry message leaves the order alone', async () => {
    const { sale } = await h.createSale({ holdMode: 'cart', items: [{ stock: 1 }], paymentWindowS: WINDOW_S });
    const buyer = h.buyerToken();
    await h.http.request('POST', '/v1/cart/items', { token: buyer.token, body: { saleItemId: sale.items[0]!.id, quantity: 1 } });
    const [order] = (await h.http.request('POST', '/v1/checkout', { token: buyer.token })).body.orders;
    const payment = await startPayment(buyer.token, order.id);
    await click(payment.providerPaymentId, 'pay');
    await settled(buyer.token, order.id, 'PAID');
    await pastDeadline();
    assert.equal(await status(buyer.token, order.id), 'PAID');
    assert.equal(await h.system.inventory.available(sale.items[0]!.id), 0);
  });

  it('when a cart hold\'s expiry message is lost, then the sweeper releases it at its expiry', async () => {
    const { sale } = await h.createSale({ holdMode: 'cart', items: [{ stock: 1 }], paymentWindowS: WINDOW_S });
    const buyer = h.buyerToken();
    const added = await h.http.request('POST', '/v1/cart/items', { token: buyer.token, body: { saleItemId: sale.items[0]!.id, quantity: 1 } });
    assert.equal(added.status, 201);
    await h.system.db.query(`delete from outbox where topic = 'stock.hold_expiry' and payload->>'holdId' = $1`, [added.body.holdId]);
    clock.advance((WINDOW_S + 1) * 1000);
    const swept = await h.system.orders.sweep();
    assert.equal(swept.cartHoldsReleased, 1);
    assert.equal(await h.system.inventory.available(sale.items[0]!.id), 1);
    assert.equal((await h.http.request('POST', '/v1/checkout', { token: buyer.token })).body.error.code, 'cart_empty');
  });

  it('when the webhook and the close race, then the order reaches one terminal state and the duplicate changes nothing', async () => {
    const { buyer, order } = await placeOrder();
    const payment = await startPayment(buyer.token, order.id);
    await knobs({ webhookDelayMs: 300 });
    await click(payment.providerPaymentId, 'pay');
    await pastDeadline();
    await knobs({ webhookDelayMs: 0 });
    await until(async () => (await h.system.db.query(`select 1 from webhook_events where type = 'payment_intent.succeeded' and received_at is not null`)).length > 0, 'the delayed webhook');
    await settled(buyer.token, order.id, 'PAID');
    assert.equal(await scalar(h.system, `select count(*) from payments where order_id = $1 and status = 'succeeded'`, [order.id]), 1);
    assert.equal(await scalar(h.system, `select count(*) from refunds where order_id = $1`, [order.id]), 0);
  });

  it('when the order is closed while the provider is still creating its payment, then the payment is refused and its intent cancelled, so no capture can go unnoticed', async () => {
    const { buyer, order } = await placeOrder();
    await knobs({ latencyMs: 2000 });
    const reachedProvider = new Promise<void>((resolve) => {
      const onRequest = (request: IncomingMessage) => {
        if (request.method !== 'POST' || request.url !== '/v1/payment_intents') return;
        h.psp.server.off('request', onRequest);
        resolve();
      };
      h.psp.server.on('request', onRequest);
    });
    const paying = h.http.request('POST', `/v1/orders/${order.id}/payment`, { token: buyer.token });
    // The close runs while the simulator holds the intent's creation (2 s): it finds no payment to settle.
    await reachedProvider;
    clock.advance(WINDOW_S * 1000 + 1000);
    assert.equal(await h.system.orders.closeIfUnpaid(order.id), 'expired');
    const answer = await paying;
    await knobs({ latencyMs: 0 });
    assert.equal(answer.status, 409, JSON.stringify(answer.body));
    assert.equal(answer.body.error.code, 'payment_window_closed');
    assert.equal(await scalar(h.system, `select count(*) from payments where order_id = $1`, [order.id]), 0, 'no payment recorded for the closed order');
    const events = await fetch(`${h.pspUrl}/_sim/events?type=payment_intent.canceled`, { headers: { authorization: `Bearer ${h.system.config.PSP_API_KEY}` } });
    const canceled = ((await events.json()) as { data: Array<{ event: { data: { object: { metadata?: Record<string, string> } } } }> }).data
      .filter((e) => e.event.data.object.metadata?.order_id === order.id);
    assert.equal(canceled.length, 1, 'the intent created for the closed order was cancelled');
  });

  it('after all of it, the audit is clean', async () => {
    clock.advance(3600_000);
    await h.system.orders.sweep();
    await h.system.broker.drain();
    assert.deepEqual((await h.system.audit({ quiet: true })).violations, []);
  });

  async function knobs(values: Record<string, number | boolean>) {
    const res = await fetch(`${h.pspUrl}/_sim/knobs`, {
      method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${h.system.config.PSP_API_KEY}` }, body: JSON.stringify(values),
    });
    assert.equal(res.status, 200, await res.text());
  }
});
