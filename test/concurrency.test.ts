import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { countBy, httpClient, runConcurrently, scalar, startHarness, type Harness } from './support/harness.ts';

/**
 * Real concurrent HTTP requests against a running server, then the audit. The server must admit
 * exactly the stock, answer every loser at once, and leave books that balance.
 */
describe('a flash sale under concurrent buyers', () => {
  let h: Harness;
  before(async () => { h = await startHarness(); });
  after(() => h.close());

  async function quietAudit() {
    await h.system.broker.drain();
    return h.system.audit({ quiet: true });
  }

  it('when 2,000 buyers race for 100 units (order hold, limit 1), then exactly 100 orders and 1,900 sold_out', async () => {
    const { sale } = await h.createSale({ items: [{ stock: 100, perUserLimit: 1 }] });
    const item = sale.items[0]!;
    const buyers = Array.from({ length: 2000 }, () => h.buyerToken());
    const client = httpClient(h.url, 128);
    const responses = await runConcurrently(buyers.length, 512, (i) =>
      client.request('POST', '/v1/orders', { token: buyers[i]!.token, body: { items: [{ saleItemId: item.id, quantity: 1 }] } }));
    await client.close();
    const outcomes = countBy(responses, (r) => (r.status === 201 ? 'created' : `${r.status} ${r.body?.error?.code}`));
    assert.deepEqual(outcomes, { created: 100, '409 sold_out': 1900 });
    assert.equal(await scalar(h.system, 'select count(*) from orders where sale_id = $1', [sale.id]), 100);
    assert.equal(await h.system.inventory.available(item.id), 0);
    const report = await quietAudit();
    assert.deepEqual(report.violations, []);
  });

  it('when 2,000 buyers race for 100 units held on add-to-cart, then exactly 100 holds, and checkout turns them into 100 orders', async () => {
    const { sale } = await h.createSale({ holdMode: 'cart', items: [{ stock: 100, perUserLimit: 1 }] });
    const item = sale.items[0]!;
    const buyers = Array.from({ length: 2000 }, () => h.buyerToken());
    const client = httpClient(h.url, 128);
    const responses = await runConcurrently(buyers.length, 512, (i) =>
      client.request('POST', '/v1/cart/items', { token: buyers[i]!.token, body: { saleItemId: item.id, quantity: 1 } }));
    const outcomes = countBy(responses, (r) => (r.status === 201 ? 'held' : `${r.status} ${r.body?.error?.code}`));
    assert.deepEqual(outcomes, { held: 100, '409 sold_out': 1900 });
    const winners = buyers.filter((_, i) => responses[i]!.status === 201);
    const checkouts = await runConcurrently(winners.length, 64, (i) => client.request('POST', '/v1/checkout', { token: winners[i]!.token }));
    await client.close();
    assert.deepEqual(countBy(checkouts, (r) => String(r.status)), { 201: 100 });
    const report = await quietAudit();
    assert.deepEqual(report.violations, []);
  });

  it('when 200 buyers each send 5 requests at once (limit 1), then each gets exactly one unit', async () => {
    const { sale } = await h.createSale({ items: [{ stock: 1000, perUserLimit: 1 }] });
    const item = sale.items[0]!;
    const buyers = Array.from({ length: 200 }, () => h.buyerToken());
    const client = httpClient(h.url, 128);
    const responses = await runConcurrently(1000, 1000, (i) =>
      client.request('POST', '/v1/orders', { token: buyers[i % 200]!.token, body: { items: [{ saleItemId: item.id, quantity: 1 }] } }));
    await client.close();
    const outcomes = countBy(responses, (r) => (r.status === 201 ? 'created' : `${r.status} ${r.body?.error?.code}`));
    assert.deepEqual(outcomes, { created: 200, '409 limit_exceeded': 800 });
    const perBuyer = await h.system.db.query<{ user_id: string; n: number }>(
      'select user_id, count(*) as n from orders where sale_id = $1 group by user_id', [sale.id]);
    assert.equal(perBuyer.length, 200);
    assert.ok(perBuyer.every((row) => row.n === 1));
    const report = await quietAudit();
    assert.deepEqual(report.violations, []);
  });

  it('when buyers race for several items with multi-line orders, then no item is oversold and the books balance', async () => {
    const { sale } = await h.createSale({ items: [{ stock: 30, perUserLimit: 2 }, { stock: 20, perUserLimit: 2 }, { stock: 50, perUserLimit: 3 }] });
    const ids = sale.items.map((i) => i.id);
    const buyers = Array.from({ length: 400 }, () => h.buyerToken());
    const client = httpClient(h.url, 128);
    const responses = await runConcurrently(buyers.length, 400, (i) => {
      const lines = [{ saleItemId: ids[i % 3]!, quantity: 1 + (i % 2) }];
      if (i % 4 === 0) lines.push({ saleItemId: ids[(i + 1) % 3]!, quantity: 1 });
      return client.request('POST', '/v1/orders', { token: buyers[i]!.token, body: { items: lines } });
    });
    await client.close();
    assert.ok(responses.every((r) => r.status === 201 || (r.status === 409 && r.body.error.code === 'sold_out')), JSON.stringify(countBy(responses, (r) => String(r.status))));
    const sold = await h.system.db.query<{ sale_item_id: string; units: number }>(
      `select i.sale_item_id, sum(i.quantity) as units from order_items i join orders o on o.id = i.order_id where o.sale_id = $1 group by i.sale_item_id`, [sale.id]);
    const stock = new Map(sale.items.map((i) => [i.id, i.stock]));
    for (const row of sold) assert.ok(row.units <= stock.get(row.sale_item_id)!, `item ${row.sale_item_id} sold ${row.units}`);
    const report = await quietAudit();
    assert.deepEqual(report.violations, []);
  });
});
