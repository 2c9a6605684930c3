import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { scalar, startHarness, type Harness } from '../../test/support/harness.ts';

describe('orders over HTTP', () => {
  let h: Harness;
  before(async () => { h = await startHarness(); });
  after(() => h.close());

  const order = (token: string, saleItemId: string, quantity = 1, headers: Record<string, string> = {}) =>
    h.http.request('POST', '/v1/orders', { token, body: { items: [{ saleItemId, quantity }] }, headers });

  it('when a buyer orders an item on sale, then 201 with a pending order and the stock shows one fewer', async () => {
    const { sale } = await h.createSale({ items: [{ stock: 5, perUserLimit: 2, flashPrice: 1234 }] });
    const item = sale.items[0]!;
    const buyer = h.buyerToken();
    const res = await order(buyer.token, item.id, 2);
    assert.equal(res.status, 201, JSON.stringify(res.body));
    assert.equal(res.body.status, 'PENDING_PAYMENT');
    assert.equal(res.body.totalAmount, 2468);
    assert.equal(res.body.userId, buyer.userId);
    const shown = await h.http.request('GET', `/v1/flash-sales/${sale.id}`);
    assert.equal(shown.body.items[0].remaining, 3);
    const read = await h.http.request('GET', `/v1/orders/${res.body.id}`, { token: buyer.token });
    assert.equal(read.status, 200);
    assert.deepEqual(read.body.items.map((i: { quantity: number }) => i.quantity), [2]);
  });

  it('when stock runs out, then the next buyer gets 409 sold_out', async () => {
    const { sale } = await h.createSale({ items: [{ stock: 1 }] });
    assert.equal((await order(h.buyerToken().token, sale.items[0]!.id)).status, 201);
    const res = await order(h.buyerToken().token, sale.items[0]!.id);
    assert.equal(res.status, 409);
    assert.equal(res.body.error.code, 'sold_out');
  });

  it('when an item is flagged sold out, then the early answer is the same 409 the gate gives through the error handler', async () => {
    const { sale } = await h.createSale({ items: [{ stock: 1 }] });
    const item = sale.items[0]!;
    assert.equal((await order(h.buyerToken().token, item.id)).status, 201);
    // With an Idempotency-Key the early refusal is skipped: the gate refuses, the error handler answers.
    const throughGate = await order(h.buyerToken().token, item.id, 1, { 'idempotency-key': 'k-1' });
    const soldOutCount = async () => Number(/flashsale_purchase_attempts_total\{kind="order",outcome="sold_out"\} (\d+)/.exec(String((await h.http.request('GET', '/metrics')).body))?.[1] ?? 0);
    const countedBefore = await soldOutCount();
    const early = await order(h.buyerToken().token, item.id);
    assert.equal(await soldOutCount(), countedBefore + 1, 'the early refusal is counted');
    assert.equal(early.status, 409);
    assert.equal(throughGate.status, 409);
    assert.deepEqual(early.body, throughGate.body);
    assert.equal(early.headers['content-type'], throughGate.headers['content-type']);
  });

  it('when a buyer goes past the per-user limit, then 409 limit_exceeded', async () => {
    const { sale } = await h.createSale({ items: [{ stock: 10, perUserLimit: 1 }] });
    const buyer = h.buyerToken();
    assert.equal((await order(buyer.token, sale.items[0]!.id)).status, 201);
    const res = await order(buyer.token, sale.items[0]!.id);
    assert.equal(res.status, 409);
    assert.equal(res.body.error.code, 'limit_exceeded');
  });

  it('when the sale has not opened yet, then 409 sale_not_active', async () => {
    const { sale } = await h.createSale({ startsInMs: 3600_000 });
    const res = await order(h.buyerToken().token, sale.items[0]!.id);
    assert.equal(res.status, 409);
    assert.equal(res.body.error.code, 'sale_not_active');
  });

  it('when the item does not exist, then 422 unknown_item', async () => {
    const res = await order(h.buyerToken().token, '00000000-0000-4000-8000-000000000000');
    assert.equal(res.status, 422);
    assert.equal(res.body.error.code, 'unknown_item');
  });

  it('when the quantity is zero, negative or fractional, then 422 and nothing is held', async () => {
    const { sale } = await h.createSale({ items: [{ stock: 3 }] });
    for (const quantity of [0, -1, 1.5]) {
      const res = await order(h.buyerToken().token, sale.items[0]!.id, quantity);
      assert.equal(res.status, 422, `quantity ${quantity}`);
      assert.equal(res.body.error.code, 'validation_failed');
    }
    assert.equal(await h.system.inventory.available(sale.items[0]!.id), 3);
  });

  it('when a buyer orders an item of a cart-hold sale directly, then 409 hold_mode_mismatch', async () => {
    const { sale } = await h.createSale({ holdMode: 'cart' });
    const res = await order(h.buyerToken().token, sale.items[0]!.id);
    assert.equal(res.status, 409);
    assert.equal(res.body.error.code, 'hold_mode_mismatch');
  });

  it('when a buyer cancels a pending order, then the unit is back on sale and another buyer gets it', async () => {
    const { sale } = await h.createSale({ items: [{ stock: 1 }] });
    const first = h.buyerToken();
    const placed = await order(first.token, sale.items[0]!.id);
    assert.equal((await order(h.buyerToken().token, sale.items[0]!.id)).body.error.code, 'sold_out');
    const cancelled = await h.http.request('POST', `/v1/orders/${placed.body.id}/cancel`, { token: first.token });
    assert.equal(cancelled.status, 200);
    assert.equal(cancelled.body.status, 'CANCELLED');
    assert.equal((await order(h.buyerToken().token, sale.items[0]!.id)).status, 201);
    const again = await h.http.request('POST', `/v1/orders/${placed.body.id}/cancel`, { token: first.token });
    assert.equal(again.status, 200, 'a retry after a lost answer is told the order is cancelled');
    assert.equal(again.body.status, 'CANCELLED');
  });

  it("when a buyer asks for another buyer's order, then 404 and none of its data", async () => {
    const { sale } = await h.createSale();
    const owner = h.buyerToken();
    const placed = await order(owner.token, sale.items[0]!.id);
    const intruder = h.buyerToken();
    for (const [method, path] of [['GET', `/v1/orders/${placed.body.id}`], ['POST', `/v1/orders/${placed.body.id}/cancel`]] as const) {
      const res = await h.http.request(method, path, { token: intruder.token });
      assert.equal(res.status, 404, path);
      assert.equal(res.body.error.code, 'not_found');
      assert.ok(!JSON.stringify(res.body).includes(owner.userId));
    }
    const list = await h.http.request('GET', '/v1/orders', { token: intruder.token });
    assert.deepEqual(list.body.orders, []);
  });

  it('when a buyer lists orders, then only its own, newest first, filterable by status', async () => {
    const { sale } = await h.createSale({ items: [{ stock: 10, perUserLimit: 3 }] });
    const buyer = h.buyerToken();
    const a = await order(buyer.token, sale.items[0]!.id);
    const b = await order(buyer.token, sale.items[0]!.id);
    await h.http.request('POST', `/v1/orders/${a.body.id}/cancel`, { token: buyer.token });
    const all = await h.http.request('GET', '/v1/orders', { token: buyer.token });
    assert.deepEqual(all.body.orders.map((o: { id: string }) => o.id).sort(), [a.body.id, b.body.id].sort());
    const pending = await h.http.request('GET', '/v1/orders?status=PENDING_PAYMENT', { token: buyer.token });
    assert.deepEqual(pending.body.orders.map((o: { id: string }) => o.id), [b.body.id]);
  });

  it('when no token or a non-buyer token is sent, then 401 or 403', async () => {
    const { sale, merchantToken } = await h.createSale();
    const anonymous = await h.http.request('POST', '/v1/orders', { body: { items: [{ saleItemId: sale.items[0]!.id, quantity: 1 }] } });
    assert.equal(anonymous.status, 401);
    const merchant = await order(merchantToken, sale.items[0]!.id);
    assert.equal(merchant.status, 403);
    assert.equal(merchant.body.error.code, 'forbidden');
  });

  it('after all of it, the audit is clean', async () => {
    await h.system.broker.drain();
    const report = await h.system.audit({ quiet: true });
    assert.deepEqual(report.violations, []);
  });
});

describe('cart holds over HTTP', () => {
  let h: Harness;
  before(async () => { h = await startHarness(); });
  after(() => h.close());

  it('when a buyer adds to cart and checks out, then the order keeps the hold and its original expiry', async () => {
    const { sale } = await h.createSale({ holdMode: 'cart', items: [{ stock: 2 }] });
    const buyer = h.buyerToken();
    const added = await h.http.request('POST', '/v1/cart/items', { token: buyer.token, body: { saleItemId: sale.items[0]!.id, quantity: 1 } });
    assert.equal(added.status, 201, JSON.stringify(added.body));
    const cart = await h.http.request('GET', '/v1/cart', { token: buyer.token });
    assert.equal(cart.body.items.length, 1);
    assert.equal((await h.http.request('GET', `/v1/flash-sales/${sale.id}`)).body.items[0].remaining, 1);
    const checkout = await h.http.request('POST', '/v1/checkout', { token: buyer.token });
    assert.equal(checkout.status, 201, JSON.stringify(checkout.body));
    const [placed] = checkout.body.orders;
    assert.equal(placed.items[0].holdId, added.body.holdId);
    assert.equal(placed.expiresAt, added.body.expiresAt);
    assert.deepEqual((await h.http.request('GET', '/v1/cart', { token: buyer.token })).body.items, []);
    const empty = await h.http.request('POST', '/v1/checkout', { token: buyer.token });
    assert.equal(empty.status, 409);
    assert.equal(empty.body.error.code, 'cart_empty');
  });

  it('when a buyer removes a cart item, then the unit is back on sale', async () => {
    const { sale } = await h.createSale({ holdMode: 'cart', items: [{ stock: 1 }] });
    const buyer = h.buyerToken();
    const added = await h.http.request('POST', '/v1/cart/items', { token: buyer.token, body: { saleItemId: sale.items[0]!.id, quantity: 1 } });
    const other = await h.http.request('POST', '/v1/cart/items', { token: h.buyerToken().token, body: { saleItemId: sale.items[0]!.id, quantity: 1 } });
    assert.equal(other.body.error.code, 'sold_out');
    const stranger = await h.http.request('DELETE', `/v1/cart/items/${added.body.holdId}`, { token: h.buyerToken().token });
    assert.equal(stranger.status, 404);
    const removed = await h.http.request('DELETE', `/v1/cart/items/${added.body.holdId}`, { token: buyer.token });
    assert.equal(removed.status, 204);
    assert.equal((await h.http.request('POST', '/v1/cart/items', { token: h.buyerToken().token, body: { saleItemId: sale.items[0]!.id, quantity: 1 } })).status, 201);
  });

  it('when a buyer adds an item of an order-hold sale to the cart, then 409 hold_mode_mismatch', async () => {
    const { sale } = await h.createSale({ holdMode: 'order' });
    const res = await h.http.request('POST', '/v1/cart/items', { token: h.buyerToken().token, body: { saleItemId: sale.items[0]!.id, quantity: 1 } });
    assert.equal(res.status, 409);
    assert.equal(res.body.error.code, 'hold_mode_mismatch');
  });

  it('after all of it, the audit is clean', async () => {
    await h.system.broker.drain();
    assert.deepEqual((await h.system.audit({ quiet: true })).violations, []);
  });
});

describe('the sold-out short-circuit', () => {
  let h: Harness;
  before(async () => { h = await startHarness({ config: { RATE_LIMIT_USER_MAX: 2, RATE_LIMIT_USER_WINDOW_MS: 600_000 } }); });
  after(() => h.close());

  const order = (token: string, saleItemId: string, headers: Record<string, string> = {}) =>
    h.http.request('POST', '/v1/orders', { token, body: { items: [{ saleItemId, quantity: 1 }] }, headers });

  it('when an item is sold out, then a buyer past the per-user rate limit is told sold_out, while the limit still holds for items on sale', async () => {
    const { sale } = await h.createSale({ items: [{ stock: 1 }, { stock: 5 }] });
    const [gone, onSale] = [sale.items[0]!.id, sale.items[1]!.id];
    assert.equal((await order(h.buyerToken().token, gone)).status, 201); // the last unit: the item is flagged sold out
    const buyer = h.buyerToken();
    for (let i = 0; i < 4; i++) {
      const res = await order(buyer.token, gone);
      assert.equal(res.status, 409, JSON.stringify(res.body));
      assert.equal(res.body.error.code, 'sold_out');
    }
    // The buyer's limit (2) is not spent by the short-circuited refusals: two more attempts pass it, the third does not.
    assert.equal((await order(buyer.token, onSale)).status, 201);
    assert.equal((await order(buyer.token, onSale)).status, 409); // limit_exceeded (per-user limit 1)
    assert.equal((await order(buyer.token, onSale)).status, 429);
  });

  it('when an item is sold out, then the refusal needs no verified token, but no credentials still get 401 and a malformed body 422', async () => {
    const { sale } = await h.createSale({ items: [{ stock: 1 }] });
    const item = sale.items[0]!.id;
    assert.equal((await order(h.buyerToken().token, item)).status, 201);
    const forged = await order('not-a-token', item);
    assert.equal(forged.status, 409, JSON.stringify(forged.body));
    assert.equal(forged.body.error.code, 'sold_out');
    const anonymous = await h.http.request('POST', '/v1/orders', { body: { items: [{ saleItemId: item, quantity: 1 }] } });
    assert.equal(anonymous.status, 401);
    const malformed = await h.http.request('POST', '/v1/orders', { token: h.buyerToken().token, body: { items: [{ saleItemId: item, quantity: 0 }], extra: true } });
    assert.equal(malformed.status, 422, JSON.stringify(malformed.body));
    assert.equal(await scalar(h.system, 'select count(*) from order_items where sale_item_id = $1', [item]), 1, 'the refusals changed nothing');
    await h.system.broker.drain();
    assert.deepEqual((await h.system.audit({ quiet: true })).violations, []);
  });

  it('when an accepted request is retried with its Idempotency-Key after the sell-out, then it gets its 201 back, not sold_out', async () => {
    const { sale } = await h.createSale({ items: [{ stock: 1 }] });
    const item = sale.items[0]!.id;
    const buyer = h.buyerToken();
    const key = { 'idempotency-key': `retry-${buyer.userId}` };
    const first = await order(buyer.token, item, key);
    assert.equal(first.status, 201);
    assert.equal((await order(h.buyerToken().token, item)).body.error.code, 'sold_out');
    const again = await order(buyer.token, item, key);
    assert.equal(again.status, 201, JSON.stringify(again.body));
    assert.equal(again.body.id, first.body.id);
  });
});
