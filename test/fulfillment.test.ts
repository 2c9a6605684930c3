import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { scalar, startHarness, until, type Harness } from './support/harness.ts';

describe('fulfillment: a paid order is shipped, delivered and fulfilled', () => {
  let h: Harness;
  before(async () => { h = await startHarness(); });
  after(() => h.close());

  const send = (method: string, path: string, opts: { token?: string; body?: unknown; headers?: Record<string, string> } = {}) => h.http.request(method, path, opts);
  const settle = () => h.system.broker.drain();

  /** A merchant's sale of `lines` items (5 in stock each), and a buyer's PAID order of `quantity` units of each. */
  async function paidOrder(lines = 1, quantity = 1, buyer = h.buyerToken()) {
    const { sale, merchantToken } = await h.createSale({ items: Array.from({ length: lines }, () => ({ stock: 5, perUserLimit: 5, flashPrice: 1_000 })) });
    const items = sale.items.map((i) => ({ saleItemId: i.id, quantity }));
    const order = (await send('POST', '/v1/orders', { token: buyer.token, body: { items } })).body;
    const payment = (await send('POST', `/v1/orders/${order.id}/payment`, { token: buyer.token })).body;
    await fetch(`${h.pspUrl}/pay/${payment.providerPaymentId}/pay`, { method: 'POST', redirect: 'manual' });
    await until(async () => {
      await settle();
      return (await send('GET', `/v1/orders/${order.id}`, { token: buyer.token })).body.status === 'PAID';
    }, 'payment');
    await settle();
    return { order, buyer, merchant: merchantToken, itemIds: sale.items.map((i) => i.id) };
  }

  const getOrder = async (id: string, token: string) => (await send('GET', `/v1/orders/${id}`, { token })).body;
  const kinds = async (token: string) => (await send('GET', '/v1/notifications?limit=100', { token })).body.notifications
    .filter((n: { channel: string }) => n.channel === 'in_app').map((n: { kind: string }) => n.kind);

  it('when an order is paid, then the order-paid consumer opens one PENDING shipment of its lines, once', async () => {
    const { order, buyer } = await paidOrder(2);
    const seen = await getOrder(order.id, buyer.token);
    assert.equal(seen.shipments.length, 1);
    assert.equal(seen.shipments[0].status, 'PENDING');
    assert.equal(seen.shipments[0].id, order.id);
    assert.deepEqual(seen.shipments[0].items.map((i: { status: string }) => i.status), ['PENDING', 'PENDING']);
    assert.equal(await scalar(h.system, 'select count(*) from shipments where order_id = $1', [order.id]), 1);
  });

  it('when the merchant ships and then delivers, then the order is FULFILLED, the buyer sees the tracking and hears of each step', async () => {
    const { order, buyer, merchant } = await paidOrder();
    const shipped = await send('POST', `/v1/shop/orders/${order.id}/shipments`, { token: merchant, body: { carrier: 'DHL', trackingNumber: 'TRACK-1' } });
    assert.equal(shipped.status, 201, JSON.stringify(shipped.body));
    assert.equal(shipped.body.status, 'SHIPPED');
    assert.equal((await getOrder(order.id, buyer.token)).status, 'FULFILLED');
    const delivered = await send('PATCH', `/v1/shop/shipments/${shipped.body.id}`, { token: merchant, body: { status: 'DELIVERED' } });
    assert.equal(delivered.status, 200, JSON.stringify(delivered.body));
    assert.equal(delivered.body.status, 'DELIVERED');
    const again = await send('PATCH', `/v1/shop/shipments/${shipped.body.id}`, { token: merchant, body: { status: 'DELIVERED' } });
    assert.equal(again.status, 200);
    const seen = await getOrder(order.id, buyer.token);
    assert.equal(seen.status, 'FULFILLED');
    assert.deepEqual(seen.shipments.map((s: { carrier: string; trackingNumber: string; status: string }) => [s.carrier, s.trackingNumber, s.status]), [['DHL', 'TRACK-1', 'DELIVERED']]);
    await settle();
    const heard = await kinds(buyer.token);
    for (const kind of ['payment_received', 'order_shipped', 'shipment_delivered']) assert.ok(heard.includes(kind), `${kind} in ${heard}`);
    assert.equal(heard.filter((k: string) => k === 'shipment_delivered').length, 1, 'delivered twice, told once');
  });

  it('when a buyer with an email address has an order shipped in part, the rest cancelled, and delivered, then each step (shipped, fulfilled, delivered) reaches them in the app and by email, once', async () => {
    const registered = await h.system.accounts.register(`steps-${randomUUID()}@test.local`, 'steps-pass-1');
    const buyer = { userId: registered.id, token: h.system.tokens.issue({ userId: registered.id, role: 'buyer' }) };
    const { order, merchant, itemIds } = await paidOrder(2, 1, buyer);
    const shipped = await send('POST', `/v1/shop/orders/${order.id}/shipments`, { token: merchant, body: { carrier: 'DHL', trackingNumber: 'STEP-1', items: [itemIds[0]] } });
    assert.equal(shipped.status, 201, JSON.stringify(shipped.body));
    // The last pending line cancelled, with the other shipped: FULFILLED without a shipment of its own.
    assert.equal((await send('POST', `/v1/shop/orders/${order.id}/lines/${itemIds[1]}/cancel`, { token: merchant, body: {} })).body.status, 'FULFILLED');
    assert.equal((await send('PATCH', `/v1/shop/shipments/${shipped.body.id}`, { token: merchant, body: { status: 'DELIVERED' } })).status, 200);
    const steps = ['order_shipped', 'order_fulfilled', 'shipment_delivered'];
    const heard = async () => ((await send('GET', '/v1/notifications?limit=100', { token: buyer.token })).body.notifications as Array<{ kind: string; channel: string; subject: string; body: string }>)
      .filter((n) => steps.includes(n.kind));
    await until(async () => {
      await settle();
      return (await heard()).length === steps.length * 2;
    }, 'every step in the app and by email');
    const notes = await heard();
    assert.deepEqual(notes.map((n) => `${n.kind}/${n.channel}`).sort(), steps.flatMap((k) => [`${k}/email`, `${k}/in_app`]).sort());
    assert.match(notes.find((n) => n.kind === 'order_shipped')!.body, /STEP-1/);
    assert.match(notes.find((n) => n.kind === 'order_fulfilled')!.subject, new RegExp(order.id));
  });

  it('when a two-line order ships one line, then it stays PAID with two shipments; the second line shipped makes it FULFILLED', async () => {
    const { order, buyer, merchant, itemIds } = await paidOrder(2);
    const first = await send('POST', `/v1/shop/orders/${order.id}/shipments`, { token: merchant, body: { carrier: 'UPS', trackingNumber: 'P-1', items: [itemIds[0]] } });
    assert.equal(first.status, 201, JSON.stringify(first.body));
    assert.notEqual(first.body.id, order.id);
    let seen = await getOrder(order.id, buyer.token);
    assert.equal(seen.status, 'PAID');
    assert.deepEqual(seen.shipments.map((s: { status: string }) => s.status).sort(), ['PENDING', 'SHIPPED']);
    const twice = await send('POST', `/v1/shop/orders/${order.id}/shipments`, { token: merchant, body: { carrier: 'UPS', trackingNumber: 'P-1b', items: [itemIds[0]] } });
    assert.equal(twice.status, 409, 'a line ships once');
    const second = await send('POST', `/v1/shop/orders/${order.id}/shipments`, { token: merchant, body: { carrier: 'UPS', trackingNumber: 'P-2' } });
    assert.equal(second.status, 201);
    assert.equal(second.body.id, order.id);
    seen = await getOrder(order.id, buyer.token);
    assert.equal(seen.status, 'FULFILLED');
    assert.deepEqual(seen.shipments.map((s: { trackingNumber: string }) => s.trackingNumber).sort(), ['P-1', 'P-2']);
  });

  it('when shipments leave and the last one makes the order FULFILLED, then the buyer hears once per shipment, the last saying the order is complete, and no separate fulfilled notice', async () => {
    const { order, buyer, merchant, itemIds } = await paidOrder(2);
    assert.equal((await send('POST', `/v1/shop/orders/${order.id}/shipments`, { token: merchant, body: { carrier: 'UPS', trackingNumber: 'ONCE-1', items: [itemIds[0]] } })).status, 201);
    assert.equal((await send('POST', `/v1/shop/orders/${order.id}/shipments`, { token: merchant, body: { carrier: 'UPS', trackingNumber: 'ONCE-2' } })).status, 201);
    assert.equal((await getOrder(order.id, buyer.token)).status, 'FULFILLED');
    await settle();
    const notes = ((await send('GET', '/v1/notifications?limit=100', { token: buyer.token })).body.notifications as Array<{ kind: string; channel: string; subject: string; body: string }>)
      .filter((n) => n.channel === 'in_app' && (n.kind === 'order_shipped' || n.kind === 'order_fulfilled'));
    assert.deepEqual(notes.map((n) => n.kind), ['order_shipped', 'order_shipped'], 'one notice per shipment, none for the fulfilment they made');
    const [first, last] = [notes.find((n) => n.body.includes('ONCE-1'))!, notes.find((n) => n.body.includes('ONCE-2'))!];
    assert.doesNotMatch(`${first.subject} ${first.body}`, /complete/i, 'a part leaving does not complete the order');
    assert.match(last.subject, /complete/i, 'the last shipment says the order is complete');
  });

  it('when the merchant cancels an unshippable line, then its amount is refunded in part at the provider, the unit restocked, the rest fulfilled, and the audit is clean', async () => {
    const { order, buyer, merchant, itemIds } = await paidOrder(2, 2);
    const before = await h.system.inventory.available(itemIds[1]!);
    const cancelled = await send('POST', `/v1/shop/orders/${order.id}/lines/${itemIds[1]}/cancel`, { token: merchant, body: { restock: true } });
    assert.equal(cancelled.status, 200, JSON.stringify(cancelled.body));
    assert.equal(cancelled.body.status, 'PAID');
    assert.ok(cancelled.body.items.find((i: { saleItemId: string }) => i.saleItemId === itemIds[1]).cancelledAt);
    assert.equal(await h.system.inventory.available(itemIds[1]!), before! + 2);
    await until(async () => {
      await settle();
      return (await scalar(h.system, 'select count(*) from refunds where order_id = $1', [order.id])) === 1;
    }, 'the line refund');
    assert.equal(await scalar(h.system, 'select amount from refunds where order_id = $1', [order.id]), 2_000);
    const again = await send('POST', `/v1/shop/orders/${order.id}/lines/${itemIds[1]}/cancel`, { token: merchant, body: {} });
    assert.equal(again.status, 409);
    const shipped = await send('POST', `/v1/shop/orders/${order.id}/shipments`, { token: merchant, body: { carrier: 'DHL', trackingNumber: 'T-9' } });
    assert.equal(shipped.status, 201);
    assert.deepEqual(shipped.body.items.map((i: { saleItemId: string; status: string }) => [i.saleItemId, i.status]).sort(), [[itemIds[0], 'SHIPPED'], [itemIds[1], 'CANCELLED']].sort());
    assert.equal((await getOrder(order.id, buyer.token)).status, 'FULFILLED');
    await settle();
    const heard = await kinds(buyer.token);
    for (const kind of ['line_cancelled', 'refund_issued', 'order_shipped']) assert.ok(heard.includes(kind), `${kind} in ${heard}`);
    const report = await h.system.audit({ quiet: true });
    assert.deepEqual(report.violations, []);
    assert.equal(report.money.reconciliation.totals.USD!.received - report.money.reconciliation.totals.USD!.refunded, report.money.reconciliation.totals.USD!.paidOrders);
  });

  it('when every line is cancelled (written off), then the order is CANCELLED, refunded in full in parts, the units written off', async () => {
    const { order, buyer, merchant, itemIds } = await paidOrder(2);
    for (const id of itemIds) assert.equal((await send('POST', `/v1/shop/orders/${order.id}/lines/${id}/cancel`, { token: merchant, body: { restock: false } })).status, 200);
    const seen = await getOrder(order.id, buyer.token);
    assert.equal(seen.status, 'CANCELLED');
    assert.equal(seen.closedReason, 'merchant_cancelled');
    assert.equal(seen.shipments[0].status, 'CANCELLED');
    assert.equal(await scalar(h.system, 'select sum(written_off) from stock_items where sale_item_id = any($1::uuid[])', [itemIds]), 2);
    await until(async () => {
      await settle();
      return (await scalar(h.system, 'select coalesce(sum(amount), 0) from refunds where order_id = $1', [order.id])) === 2_000;
    }, 'both line refunds');
  });

  it('when a cart held one item twice (two lines, two holds), then one shipment line of both, and cancelling it refunds each hold once', async () => {
    const { sale, merchantToken } = await h.createSale({ holdMode: 'cart', items: [{ stock: 5, perUserLimit: 5, flashPrice: 700 }] });
    const buyer = h.buyerToken();
    const itemId = sale.items[0]!.id;
    await h.holdInCart(buyer.token, itemId);
    await h.holdInCart(buyer.token, itemId);
    const [order] = (await send('POST', '/v1/checkout', { token: buyer.token })).body.orders;
    assert.equal(order.items.length, 2);
    const payment = (await send('POST', `/v1/orders/${order.id}/payment`, { token: buyer.token })).body;
    await fetch(`${h.pspUrl}/pay/${payment.providerPaymentId}/pay`, { method: 'POST', redirect: 'manual' });
    await until(async () => {
      await settle();
      return (await getOrder(order.id, buyer.token)).shipments.length === 1;
    }, 'the shipment');
    assert.deepEqual((await getOrder(order.id, buyer.token)).shipments[0].items.map((i: { quantity: number }) => i.quantity), [2]);
    const res = await send('POST', `/v1/shop/orders/${order.id}/lines/${itemId}/cancel`, { token: merchantToken });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.status, 'CANCELLED');
    await until(async () => {
      await settle();
      return (await scalar(h.system, 'select count(*) from refunds where order_id = $1', [order.id])) === 2;
    }, 'a refund per hold');
    assert.equal(await scalar(h.system, 'select sum(amount) from refunds where order_id = $1', [order.id]), 1_400);
    assert.equal(await h.system.inventory.available(itemId), 5);
  });

  it('when a shipment is created again with the same Idempotency-Key, then the stored answer is replayed and nothing ships twice', async () => {
    const { order, merchant } = await paidOrder();
    const headers = { 'idempotency-key': `ship-${order.id}` };
    const body = { carrier: 'DHL', trackingNumber: 'IDEM-1' };
    const first = await send('POST', `/v1/shop/orders/${order.id}/shipments`, { token: merchant, body, headers });
    const again = await send('POST', `/v1/shop/orders/${order.id}/shipments`, { token: merchant, body, headers });
    assert.equal(first.status, 201);
    assert.equal(again.status, 201);
    assert.deepEqual(again.body, first.body);
    assert.equal(await scalar(h.system, `select count(*) from shipments where order_id = $1 and status = 'SHIPPED'`, [order.id]), 1);
  });

  it('when shipping a line races cancelling it, then exactly one of them wins and the books stay balanced', async () => {
    const { order, merchant, itemIds } = await paidOrder(2);
    const [ship, cancel] = await Promise.all([
      send('POST', `/v1/shop/orders/${order.id}/shipments`, { token: merchant, body: { carrier: 'DHL', trackingNumber: 'RACE', items: [itemIds[0]] } }),
      send('POST', `/v1/shop/orders/${order.id}/lines/${itemIds[0]}/cancel`, { token: merchant, body: {} }),
    ]);
    assert.ok([201, 409].includes(ship.status) && [200, 409].includes(cancel.status), `${ship.status} ${cancel.status}`);
    assert.equal([ship.status === 201, cancel.status === 200].filter(Boolean).length, 1, `${ship.status} ${cancel.status}`);
    const line = await h.system.db.query<{ status: string }>('select status from shipment_lines where order_id = $1 and sale_item_id = $2', [order.id, itemIds[0]]);
    assert.equal(line[0]!.status, ship.status === 201 ? 'SHIPPED' : 'CANCELLED');
  });

  it('when another merchant, a buyer or nobody acts on the shipment, then 404 / 403 / 401 and nothing changes; a buyer sees only their own order', async () => {
    const { order, buyer, itemIds } = await paidOrder();
    const other = (await h.createSale()).merchantToken;
    const body = { carrier: 'DHL', trackingNumber: 'X' };
    assert.equal((await send('POST', `/v1/shop/orders/${order.id}/shipments`, { token: other, body })).status, 404);
    assert.equal((await send('POST', `/v1/shop/orders/${order.id}/lines/${itemIds[0]}/cancel`, { token: other, body: {} })).status, 404);
    assert.equal((await send('POST', `/v1/shop/orders/${order.id}/shipments`, { token: buyer.token, body })).status, 403);
    assert.equal((await send('POST', `/v1/shop/orders/${order.id}/shipments`, { body })).status, 401);
    assert.equal((await send('PATCH', `/v1/shop/shipments/${order.id}`, { token: other, body: { status: 'DELIVERED' } })).status, 404);
    assert.equal((await send('GET', `/v1/orders/${order.id}`, { token: h.buyerToken().token })).status, 404);
    assert.equal((await getOrder(order.id, buyer.token)).shipments[0].status, 'PENDING');
  });

  it('when an unpaid order is shipped, then 409 invalid_state', async () => {
    const { sale, merchantToken } = await h.createSale();
    const buyer = h.buyerToken();
    const id = await h.placeOrder(buyer.token, sale.items[0]!.id);
    const res = await send('POST', `/v1/shop/orders/${id}/shipments`, { token: merchantToken, body: { carrier: 'DHL', trackingNumber: 'X' } });
    assert.equal(res.status, 409);
    assert.equal(res.body.error.code, 'invalid_state');
  });

  it('when the merchant lists its orders, then filters by sale, item, status and date work, with totals, and the CSV has a row per line', async () => {
    const { order, merchant, itemIds } = await paidOrder(2, 1);
    await send('POST', `/v1/shop/orders/${order.id}/shipments`, { token: merchant, body: { carrier: '=cmd', trackingNumber: 'T,1', items: [itemIds[0]] } });
    const all = await send('GET', '/v1/shop/orders', { token: merchant });
    assert.equal(all.status, 200, JSON.stringify(all.body));
    assert.equal(all.body.total, 1);
    assert.deepEqual(all.body.totals, [{ currency: 'USD', units: 2, amount: 2_000 }]);
    const byItem = await send('GET', `/v1/shop/orders?saleItemId=${itemIds[1]}`, { token: merchant });
    assert.deepEqual(byItem.body.totals, [{ currency: 'USD', units: 1, amount: 1_000 }]);
    assert.equal((await send('GET', '/v1/shop/orders?status=EXPIRED', { token: merchant })).body.total, 0);
    assert.equal((await send('GET', `/v1/shop/orders?from=${encodeURIComponent(new Date(Date.now() + 3600_000).toISOString())}`, { token: merchant })).body.total, 0);
    assert.equal((await send('GET', `/v1/shop/orders?to=${encodeURIComponent(new Date(Date.now() + 3600_000).toISOString())}&limit=1`, { token: merchant })).body.orders.length, 1);
    assert.equal((await send('GET', `/v1/shop/orders?saleId=${randomUUID()}`, { token: merchant })).body.total, 0);
    const theirs = await send('GET', '/v1/shop/orders', { token: (await h.createSale()).merchantToken });
    assert.equal(theirs.body.total, 0, 'another shop sees none of them');
    const csv = await send('GET', '/v1/shop/orders/export', { token: merchant });
    assert.equal(csv.status, 200);
    assert.match(String(csv.headers['content-type']), /^text\/csv/);
    const lines = String(csv.body).trim().split('\r\n');
    assert.equal(lines.length, 3, String(csv.body));
    assert.ok(lines[0]!.startsWith('order_id,created_at,status'));
    assert.ok(lines.some((l) => l.includes(`'=cmd,"T,1"`)), 'a formula is neutralised and a comma quoted');
    assert.equal((await send('GET', '/v1/shop/orders', { token: h.buyerToken().token })).status, 403);
  });

  describe('the audit rules', () => {
    it('when a paid order has no shipment, then paid_order_has_shipment', async () => {
      const { order } = await paidOrder();
      await h.system.db.query('delete from shipment_lines where order_id = $1', [order.id]);
      await h.system.db.query('delete from shipments where order_id = $1', [order.id]);
      const report = await h.system.audit({ quiet: true });
      assert.ok(report.violations.some((v) => v.check === 'paid_order_has_shipment' && v.ids.includes(order.id)), JSON.stringify(report.violations));
      await h.system.db.query(`insert into shipments (id, order_id, shop_id, user_id, sale_id, status, created_at, updated_at)
        select id, id, $2, user_id, sale_id, 'CANCELLED', now(), now() from orders where id = $1`, [order.id, randomUUID()]);
    });

    it('when an unpaid order has a shipment, then shipment_order_paid', async () => {
      const { sale } = await h.createSale();
      const buyer = h.buyerToken();
      const id = await h.placeOrder(buyer.token, sale.items[0]!.id);
      await h.system.db.query(`insert into shipments (id, order_id, shop_id, user_id, sale_id, status, created_at, updated_at) values ($1, $1, $2, $3, $4, 'PENDING', now(), now())`,
        [id, randomUUID(), buyer.userId, sale.id]);
      const report = await h.system.audit({ quiet: false });
      assert.ok(report.violations.some((v) => v.check === 'shipment_order_paid' && v.ids.includes(id)), JSON.stringify(report.violations));
      await h.system.db.query('delete from shipments where id = $1', [id]);
      await send('POST', `/v1/orders/${id}/cancel`, { token: buyer.token });
    });

    it('when more units are shipped than sold, then shipped_within_sold', async () => {
      const { order, merchant, itemIds } = await paidOrder();
      assert.equal((await send('POST', `/v1/shop/orders/${order.id}/shipments`, { token: merchant, body: { carrier: 'DHL', trackingNumber: 'X' } })).status, 201);
      await h.system.db.query('update shipment_lines set quantity = quantity + 5 where order_id = $1', [order.id]);
      const report = await h.system.audit({ quiet: false });
      assert.ok(report.violations.some((v) => v.check === 'shipped_within_sold' && v.ids.includes(itemIds[0]!)), JSON.stringify(report.violations));
      await h.system.db.query('update shipment_lines set quantity = quantity - 5 where order_id = $1', [order.id]);
    });

    it('after all of it, the audit is clean', async () => {
      await until(async () => {
        await settle();
        return (await h.system.audit({ quiet: true })).ok;
      }, 'a clean audit');
    });
  });
});
