import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { scalar, startHarness, until, type Harness } from './support/harness.ts';

describe('an admin cancels a paid order', () => {
  let h: Harness;
  before(async () => { h = await startHarness(); });
  after(() => h.close());

  async function paidOrder(lines = 1) {
    const { sale, merchantToken } = await h.createSale({ items: Array.from({ length: lines }, () => ({ stock: 1 })) });
    const buyer = h.buyerToken();
    const items = sale.items.map((i) => ({ saleItemId: i.id, quantity: 1 }));
    const order = (await h.http.request('POST', '/v1/orders', { token: buyer.token, body: { items } })).body;
    const payment = (await h.http.request('POST', `/v1/orders/${order.id}/payment`, { token: buyer.token })).body;
    await fetch(`${h.pspUrl}/pay/${payment.providerPaymentId}/pay`, { method: 'POST', redirect: 'manual' });
    await until(async () => {
      await h.system.broker.drain();
      return (await h.http.request('GET', `/v1/orders/${order.id}`, { token: buyer.token })).body.status === 'PAID';
    }, 'payment');
    return { order, itemId: sale.items[0]!.id as string, itemIds: sale.items.map((i) => i.id as string), buyer, merchantToken };
  }

  async function refunded(orderId: string) {
    await until(async () => {
      await h.system.broker.drain();
      return (await scalar(h.system, 'select count(*) from refunds where order_id = $1', [orderId])) === 1;
    }, 'the refund');
  }

  it('when cancelled with restock, then the buyer is refunded and the unit is on sale again', async () => {
    const { order, itemId } = await paidOrder();
    const res = await h.http.request('POST', `/v1/admin/orders/${order.id}/cancel`, { token: h.adminToken(), body: { restock: true } });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.status, 'CANCELLED');
    await refunded(order.id);
    assert.equal(await h.system.inventory.available(itemId), 1);
    assert.equal((await h.http.request('POST', '/v1/orders', { token: h.buyerToken().token, body: { items: [{ saleItemId: itemId, quantity: 1 }] } })).status, 201);
  });

  it('when cancelled without restock, then the buyer is refunded and the unit is written off, still accounted for', async () => {
    const { order, itemId } = await paidOrder();
    const res = await h.http.request('POST', `/v1/admin/orders/${order.id}/cancel`, { token: h.adminToken(), body: { restock: false } });
    assert.equal(res.status, 200);
    await refunded(order.id);
    assert.equal(await h.system.inventory.available(itemId), 0);
    assert.equal(await scalar(h.system, 'select written_off from stock_items where sale_item_id = $1', [itemId]), 1);
  });

  it('when a buyer or a merchant tries it, then 403; an already-cancelled order gives 409', async () => {
    const { order } = await paidOrder();
    assert.equal((await h.http.request('POST', `/v1/admin/orders/${order.id}/cancel`, { token: h.buyerToken().token, body: {} })).status, 403);
    const admin = h.adminToken();
    assert.equal((await h.http.request('POST', `/v1/admin/orders/${order.id}/cancel`, { token: admin, body: {} })).status, 200);
    const again = await h.http.request('POST', `/v1/admin/orders/${order.id}/cancel`, { token: admin, body: {} });
    assert.equal(again.status, 409);
    assert.equal(again.body.error.code, 'invalid_state');
  });

  it('when lines of the order have shipped (in part, or all: FULFILLED), then 409 order_shipped and nothing changes; the lines not shipped can still be cancelled one by one', async () => {
    const { order, itemIds, buyer, merchantToken } = await paidOrder(2);
    const shipped = await h.http.request('POST', `/v1/shop/orders/${order.id}/shipments`, { token: merchantToken, body: { carrier: 'DHL', trackingNumber: 'PART-1', items: [itemIds[0]] } });
    assert.equal(shipped.status, 201, JSON.stringify(shipped.body));
    const refused = await h.http.request('POST', `/v1/admin/orders/${order.id}/cancel`, { token: h.adminToken(), body: { restock: true } });
    assert.equal(refused.status, 409, JSON.stringify(refused.body));
    assert.equal(refused.body.error.code, 'order_shipped');
    assert.equal((await h.http.request('GET', `/v1/orders/${order.id}`, { token: buyer.token })).body.status, 'PAID');
    assert.equal(await scalar(h.system, 'select count(*) from refunds where order_id = $1', [order.id]), 0);
    assert.equal((await h.http.request('POST', `/v1/shop/orders/${order.id}/lines/${itemIds[1]}/cancel`, { token: merchantToken, body: {} })).status, 200);
    assert.equal((await h.http.request('GET', `/v1/orders/${order.id}`, { token: buyer.token })).body.status, 'FULFILLED');
    const fulfilled = await h.http.request('POST', `/v1/admin/orders/${order.id}/cancel`, { token: h.adminToken(), body: {} });
    assert.equal(fulfilled.status, 409);
    assert.equal(fulfilled.body.error.code, 'order_shipped');
  });

  it('after all of it, the audit is clean', async () => {
    await until(async () => {
      await h.system.broker.drain();
      return (await h.system.audit({ quiet: true })).ok;
    }, 'the last refund');
    assert.deepEqual((await h.system.audit({ quiet: true })).violations, []);
  });
});
