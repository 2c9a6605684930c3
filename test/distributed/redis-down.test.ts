import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startHarness, type Harness } from '../support/harness.ts';

process.env.FLASHSALE_TEST_ENGINES = 'distributed';

/** A Redis nobody can reach is the server's trouble: buyers and readers get 503 with Retry-After, never 500. */
describe('Redis unreachable', () => {
  let h: Harness;
  let saleId: string;
  let itemId: string;
  before(async () => {
    h = await startHarness();
    const { sale } = await h.createSale({ items: [{ stock: 5 }] });
    saleId = sale.id;
    itemId = sale.items[0]!.id;
    // Cut this process off from Redis: the gate's connection is closed and not reopened.
    (h.system.gate as unknown as { close(): Promise<void> }).close();
  });
  after(() => h.close());

  it('when a buyer orders or reads a sale, then 503 with Retry-After, and nothing is written', async () => {
    const order = await h.http.request('POST', '/v1/orders', { token: h.buyerToken().token, body: { items: [{ saleItemId: itemId, quantity: 1 }] } });
    assert.equal(order.status, 503, JSON.stringify(order.body));
    assert.ok(Number(order.headers['retry-after']) >= 1);
    const page = await h.http.request('GET', `/v1/flash-sales/${saleId}`);
    assert.equal(page.status, 503, JSON.stringify(page.body));
    assert.equal((await h.system.db.query('select 1 from holds')).length, 0);
  });
});
