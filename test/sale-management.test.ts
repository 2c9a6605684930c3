import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { createCatalog } from '../src/catalog/index.ts';
import { countBy, runConcurrently, scalar, startHarness, until, type Harness } from './support/harness.ts';

describe('sale management: edit, add stock, cancel', () => {
  let h: Harness;
  before(async () => { h = await startHarness(); });
  after(() => h.close());

  const inHours = (hours: number) => new Date(Date.now() + hours * 3600_000).toISOString();

  async function quietAudit(): Promise<void> {
    await until(async () => {
      await h.system.broker.drain();
      return (await h.system.audit({ quiet: true })).ok;
    }, 'a clean quiet audit', 20_000);
    assert.deepEqual((await h.system.audit({ quiet: true })).violations, []);
  }

  async function productOf(merchantToken: string): Promise<string> {
    const res = await h.http.request('POST', '/v1/products', { token: merchantToken, body: { name: 'Extra', price: 900, currency: 'USD' } });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    return res.body.id as string;
  }

  async function pay(token: string, orderId: string): Promise<boolean> {
    const payment = await h.http.request('POST', `/v1/orders/${orderId}/payment`, { token });
    if (payment.status !== 201 && payment.status !== 200) return false;
    const res = await fetch(`${h.pspUrl}/pay/${payment.body.providerPaymentId}/pay`, { method: 'POST', redirect: 'manual' });
    return res.status === 303;
  }

  it('when a scheduled sale is edited (name, times, stock, limits, items), then the catalog, the stock rows and the gate follow', async () => {
    const { sale, merchantToken } = await h.createSale({ items: [{ stock: 5 }, { stock: 3 }], startsInMs: 3600_000 });
    const [keep, drop] = sale.items;
    const extra = await productOf(merchantToken);
    const res = await h.http.request('PATCH', `/v1/flash-sales/${sale.id}`, {
      token: merchantToken,
      body: {
        name: 'Renamed', startsAt: inHours(2), endsAt: inHours(3),
        items: [{ productId: keep!.productId, flashPrice: 4_000, stock: 8, perUserLimit: 2 }, { productId: extra, flashPrice: 700, stock: 4, perUserLimit: 1 }],
      },
    });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.name, 'Renamed');
    assert.equal(res.body.status, 'scheduled');
    assert.equal(res.body.version, 2);
    assert.equal(res.body.items.length, 2);
    const kept = res.body.items.find((i: { id: string }) => i.id === keep!.id);
    assert.deepEqual({ stock: kept.stock, remaining: kept.remaining, perUserLimit: kept.perUserLimit, flashPrice: kept.flashPrice }, { stock: 8, remaining: 8, perUserLimit: 2, flashPrice: 4_000 });
    const added = res.body.items.find((i: { productId: string }) => i.productId === extra);
    assert.equal(added.remaining, 4);
    assert.equal(await h.system.inventory.available(drop!.id), undefined, 'the removed item left the gate');
    assert.equal(await scalar(h.system, 'select count(*) from stock_items where sale_item_id = $1', [drop!.id]), 0);
    assert.equal(await scalar(h.system, 'select initial from stock_items where sale_item_id = $1', [keep!.id]), 8);
    assert.equal(h.system.catalog.getFlashSale(sale.id)!.name, 'Renamed');
    assert.equal((await h.http.request('GET', `/v1/flash-sales/${sale.id}`)).body.startsAt, new Date(res.body.startsAt).toISOString());
  });

  it('when the sale is edited to open now, then buyers get the new terms (limit and stock)', async () => {
    const { sale, merchantToken } = await h.createSale({ items: [{ stock: 1, perUserLimit: 1 }], startsInMs: 3600_000 });
    const startsAt = new Date(Date.now() + 300).toISOString();
    const res = await h.http.request('PATCH', `/v1/flash-sales/${sale.id}`, {
      token: merchantToken, body: { startsAt, items: [{ productId: sale.items[0]!.productId, flashPrice: 100, stock: 3, perUserLimit: 2 }] },
    });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    await sleep(350);
    const buyer = h.buyerToken();
    const order = await h.http.request('POST', '/v1/orders', { token: buyer.token, body: { items: [{ saleItemId: sale.items[0]!.id, quantity: 2 }] } });
    assert.equal(order.status, 201, JSON.stringify(order.body));
    assert.equal(order.body.totalAmount, 200);
  });

  it('when the sale has started, then an edit is refused with 409 sale_started and nothing changes; another shop gets 404', async () => {
    const { sale, merchantToken } = await h.createSale({ items: [{ stock: 5 }] });
    const res = await h.http.request('PATCH', `/v1/flash-sales/${sale.id}`, { token: merchantToken, body: { name: 'Too late' } });
    assert.equal(res.status, 409);
    assert.equal(res.body.error.code, 'sale_started');
    assert.equal(h.system.catalog.getFlashSale(sale.id)!.name, sale.name);
    const other = await h.createSale({ startsInMs: 3600_000 });
    const foreign = await h.http.request('PATCH', `/v1/flash-sales/${sale.id}`, { token: other.merchantToken, body: { name: 'Not mine' } });
    assert.equal(foreign.status, 404);
    const empty = await h.http.request('PATCH', `/v1/flash-sales/${other.sale.id}`, { token: other.merchantToken, body: {} });
    assert.equal(empty.status, 422);
  });

  it('when an edit races the first buyers at the start, then either the edit wins and nobody bought, or it is refused and the old terms held', async () => {
    const outcomes: string[] = [];
    for (let round = 0; round < 6; round++) {
      const { sale, merchantToken } = await h.createSale({ items: [{ stock: 5 }], startsInMs: 150 });
      const itemId = sale.items[0]!.id;
      let editDone = false;
      const buyers = (async () => {
        const answers: number[] = [];
        while (!editDone) {
          answers.push(...(await Promise.all(Array.from({ length: 8 }, () => h.http.request('POST', '/v1/orders', { token: h.buyerToken().token, body: { items: [{ saleItemId: itemId, quantity: 1 }] } })))).map((r) => r.status));
        }
        return answers;
      })();
      await sleep(130 + round * 6);
      const edit = await h.http.request('PATCH', `/v1/flash-sales/${sale.id}`, {
        token: merchantToken, body: { startsAt: inHours(1), endsAt: inHours(2), items: [{ productId: sale.items[0]!.productId, flashPrice: 10, stock: 2, perUserLimit: 1 }] },
      });
      await sleep(50);
      editDone = true;
      const answers = await buyers;
      const orders = await scalar(h.system, 'select count(*) from orders where sale_id = $1', [sale.id]);
      if (edit.status === 200) {
        assert.equal(orders, 0, 'the edit won: nobody may have bought at the old terms');
        assert.equal(await h.system.inventory.available(itemId), 2);
      } else {
        assert.equal(edit.body.error.code, 'sale_started', JSON.stringify(edit.body));
        assert.ok(orders <= 5, `oversold: ${orders}`);
        assert.equal(answers.filter((s) => s === 201).length, orders);
      }
      outcomes.push(String(edit.status));
    }
    await quietAudit();
    assert.ok(outcomes.length === 6);
  });

  it('when stock is added to a running sale that sold out, then exactly the new units sell, in the gate and the database', async () => {
    const { sale, merchantToken } = await h.createSale({ items: [{ stock: 2 }] });
    const itemId = sale.items[0]!.id;
    const first = await runConcurrently(10, 10, () => h.http.request('POST', '/v1/orders', { token: h.buyerToken().token, body: { items: [{ saleItemId: itemId, quantity: 1 }] } }));
    assert.equal(first.filter((r) => r.status === 201).length, 2);
    const res = await h.http.request('POST', `/v1/flash-sales/${sale.id}/items/${itemId}/stock`, { token: merchantToken, body: { quantity: 3 }, headers: { 'idempotency-key': randomUUID() } });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.items[0].stock, 5);
    assert.equal(res.body.items[0].remaining, 3);
    const second = await runConcurrently(20, 20, () => h.http.request('POST', '/v1/orders', { token: h.buyerToken().token, body: { items: [{ saleItemId: itemId, quantity: 1 }] } }));
    assert.deepEqual(countBy(second, (r) => String(r.status)), { 201: 3, 409: 17 });
    assert.equal(await scalar(h.system, 'select initial from stock_items where sale_item_id = $1', [itemId]), 5);
    assert.equal(await scalar(h.system, 'select count(*) from orders where sale_id = $1', [sale.id]), 5);
    const ended = await h.createSale({ items: [{ stock: 1 }], startsInMs: -7200_000, durationMs: 3600_000 });
    const late = await h.http.request('POST', `/v1/flash-sales/${ended.sale.id}/items/${ended.sale.items[0]!.id}/stock`, { token: ended.merchantToken, body: { quantity: 1 } });
    assert.equal(late.status, 409);
    assert.equal(late.body.error.code, 'sale_ended');
    const notInSale = await h.http.request('POST', `/v1/flash-sales/${sale.id}/items/${ended.sale.items[0]!.id}/stock`, { token: merchantToken, body: { quantity: 1 } });
    assert.equal(notInSale.status, 404);
    await quietAudit();
  });

  it('when a sale is cancelled in the middle of a rush, then nothing is oversold, every pending order is closed, every payment voided or refunded and reconciled', async () => {
    // More units than buyers: the rush cannot sell out before the cancel lands, however slow the
    // machine, so every refusal is the cancel's.
    const { sale, merchantToken } = await h.createSale({ items: [{ stock: 130 }, { stock: 130 }] });
    const [a, b] = sale.items;
    const created: Array<{ id: string; token: string }> = [];
    const payments: Array<Promise<boolean>> = [];
    let cancelAnswer: { status: number; body: any } | undefined;
    const rush = runConcurrently(240, 32, async (i) => {
      if (i === 60) cancelAnswer = await h.http.request('POST', `/v1/flash-sales/${sale.id}/cancel`, { token: merchantToken });
      const buyer = h.buyerToken();
      const line = { saleItemId: (i % 2 ? a : b)!.id, quantity: 1 };
      const res = await h.http.request('POST', '/v1/orders', { token: buyer.token, body: { items: [line] } });
      if (res.status === 201) {
        created.push({ id: res.body.id, token: buyer.token });
        // Every other buyer pays at once: some captures land before the cancel, some race it.
        if (created.length % 2 === 0) payments.push(pay(buyer.token, res.body.id).catch(() => false));
      }
      return res;
    });
    const answers = await rush;
    await Promise.all(payments);
    assert.equal(cancelAnswer?.status, 200, JSON.stringify(cancelAnswer?.body));
    assert.equal(cancelAnswer!.body.status, 'cancelled');
    const codes = countBy(answers.filter((r) => r.status !== 201), (r) => r.body.error.code);
    assert.ok(codes.sale_cancelled! > 0, `no purchase was refused as cancelled: ${JSON.stringify(codes)}`);
    // A batch the gate admitted just before the cancel is refused by the database's window check.
    assert.deepEqual(Object.keys(codes).filter((c) => c !== 'sale_cancelled' && c !== 'sale_not_active'), [], JSON.stringify(codes));

    const after = await h.http.request('POST', '/v1/orders', { token: h.buyerToken().token, body: { items: [{ saleItemId: a!.id, quantity: 1 }] } });
    assert.equal(after.status, 409);
    assert.equal(after.body.error.code, 'sale_cancelled');

    const cancelledAt = new Date(cancelAnswer!.body.cancelledAt);
    await until(async () => {
      await h.system.broker.drain();
      return (await scalar(h.system, `select count(*) from orders where sale_id = $1 and (status = 'PENDING_PAYMENT' or (status = 'PAID' and updated_at >= $2))`, [sale.id, cancelledAt])) === 0;
    }, 'every pending order closed', 25_000);
    await quietAudit();

    const statuses = await h.system.db.query<{ status: string; closed_reason: string | null; n: number }>(
      'select status, closed_reason, count(*)::int as n from orders where sale_id = $1 group by 1, 2', [sale.id]);
    for (const s of statuses) assert.ok(s.status === 'PAID' || (s.status === 'CANCELLED' && s.closed_reason === 'sale_cancelled'), JSON.stringify(statuses));
    const paidLate = await scalar(h.system, `select count(*) from orders where sale_id = $1 and status = 'PAID' and updated_at >= $2`, [sale.id, cancelledAt]);
    assert.equal(paidLate, 0, 'an order paid after the cancel stands');
    // Every capture of a cancelled order is refunded; every other intent of one is voided.
    const unsettled = await scalar(h.system, `
      select count(*) from payments p join orders o on o.id = p.order_id
       where o.sale_id = $1 and o.status = 'CANCELLED'
         and not (p.status = 'canceled' or (p.status = 'succeeded' and exists (select 1 from refunds r where r.payment_id = p.id)))
         and p.status <> 'failed'`, [sale.id]);
    assert.equal(unsettled, 0);
    const sold = await scalar(h.system, `select coalesce(sum(sold), 0) from stock_items where sale_id = $1`, [sale.id]);
    assert.ok(sold <= 260);
    assert.equal(await scalar(h.system, `select coalesce(sum(held), 0) from stock_items where sale_id = $1`, [sale.id]), 0);
    const reconciliation = await h.system.reconcile({ quiet: true });
    assert.equal(reconciliation.ok, true, JSON.stringify(reconciliation.mismatches));

    // The buyers whose orders were closed heard about it.
    const closed = await h.system.db.query<{ id: string; user_id: string }>(`select id, user_id from orders where sale_id = $1 and status = 'CANCELLED'`, [sale.id]);
    assert.ok(closed.length > 0);
    const told = await scalar(h.system, `select count(*) from notifications where kind = 'order_cancelled' and channel = 'in_app' and user_id = any($1::uuid[])`, [closed.map((c) => c.user_id)]);
    assert.equal(told, closed.length);
  });

  it('when a scheduled cart sale is cancelled, then its cart holds are released, it cannot be edited or stocked, and cancelling again answers the same', async () => {
    const { sale, merchantToken } = await h.createSale({ items: [{ stock: 3 }], holdMode: 'cart' });
    const itemId = sale.items[0]!.id;
    await h.holdInCart(h.buyerToken().token, itemId);
    const res = await h.http.request('POST', `/v1/flash-sales/${sale.id}/cancel`, { token: merchantToken });
    assert.equal(res.status, 200);
    assert.equal(res.body.status, 'cancelled');
    assert.equal(await scalar(h.system, `select count(*) from holds where sale_item_id = $1 and status = 'held'`, [itemId]), 0);
    assert.equal(await h.system.inventory.available(itemId), 3);
    const again = await h.http.request('POST', `/v1/flash-sales/${sale.id}/cancel`, { token: merchantToken });
    assert.equal(again.status, 200);
    assert.equal(again.body.cancelledAt, res.body.cancelledAt);
    const stock = await h.http.request('POST', `/v1/flash-sales/${sale.id}/items/${itemId}/stock`, { token: merchantToken, body: { quantity: 1 } });
    assert.equal(stock.body.error.code, 'sale_cancelled');
    const edit = await h.http.request('PATCH', `/v1/flash-sales/${sale.id}`, { token: merchantToken, body: { name: 'x' } });
    assert.equal(edit.body.error.code, 'sale_cancelled');
    const hold = await h.http.request('POST', '/v1/cart/items', { token: h.buyerToken().token, body: { saleItemId: itemId, quantity: 1 } });
    assert.equal(hold.body.error.code, 'sale_cancelled');
    const listed = await h.http.request('GET', `/v1/flash-sales?status=cancelled&limit=100`);
    assert.ok(listed.body.sales.some((s: { id: string }) => s.id === sale.id));
    await quietAudit();
  });

  it('when another API process edits or cancels a sale, then this process\'s warm catalog follows at its next refresh', async () => {
    const { sale, merchantToken, shopId } = await h.createSale({ items: [{ stock: 3 }], startsInMs: 3600_000 });
    const other = createCatalog({ db: h.system.db, clock: h.system.clock, inventory: h.system.inventory, emit: async () => {} });
    await other.warm();
    assert.equal(other.getFlashSale(sale.id)!.version, 1);
    await h.http.request('PATCH', `/v1/flash-sales/${sale.id}`, { token: merchantToken, body: { name: 'Edited elsewhere', items: [{ productId: sale.items[0]!.productId, flashPrice: 1, stock: 9, perUserLimit: 1 }] } });
    await other.refresh();
    assert.equal(other.getFlashSale(sale.id)!.name, 'Edited elsewhere');
    assert.equal(other.getSaleItem(sale.items[0]!.id)!.stock, 9);
    await h.system.catalog.cancelFlashSale(shopId, sale.id);
    await other.refresh();
    assert.equal(other.statusOf(other.getFlashSale(sale.id)!), 'cancelled');
    await quietAudit();
  });

  it('when a sale item\'s stock and its stock row disagree, or a cancelled sale keeps an order awaiting payment, then the audit says so', async () => {
    const { sale } = await h.createSale({ items: [{ stock: 3 }] });
    const itemId = sale.items[0]!.id;
    const bump = () => h.system.db.query('update flash_sales set version = version + 1, updated_at = $2 where id = $1', [sale.id, new Date()]);
    await h.system.db.query('update sale_items set stock = stock + 1 where id = $1', [itemId]);
    await bump();
    const off = await h.system.audit({ quiet: false });
    assert.ok(off.violations.some((v) => v.check === 'sale_stock_matches_inventory' && v.ids.includes(itemId)), JSON.stringify(off.violations));
    await h.system.db.query('update sale_items set stock = stock - 1 where id = $1', [itemId]);
    await bump();

    // Marked cancelled behind the use case's back: no sale.cancelled, so nobody closes the order.
    const orderId = await h.placeOrder(h.buyerToken().token, itemId);
    await h.system.db.query('update flash_sales set cancelled_at = $2 where id = $1', [sale.id, new Date()]);
    await bump();
    await h.system.broker.drain();
    const pending = await h.system.audit({ quiet: true });
    assert.ok(pending.violations.some((v) => v.check === 'cancelled_sale_orders_closed' && v.ids.includes(orderId)), JSON.stringify(pending.violations));
    assert.equal((await h.http.request('POST', `/v1/admin/orders/${orderId}/cancel`, { token: h.adminToken(), body: {} })).status, 200);
    await quietAudit();
  });
});
