import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { countBy, runConcurrently, scalar, startHarness, type Harness } from './support/harness.ts';

describe('Idempotency-Key', () => {
  let h: Harness;
  before(async () => { h = await startHarness(); });
  after(() => h.close());

  it('when the same key is sent 20 times concurrently, then one order exists and every answer names it', async () => {
    const { sale } = await h.createSale({ items: [{ stock: 10, perUserLimit: 5 }] });
    const buyer = h.buyerToken();
    const body = { items: [{ saleItemId: sale.items[0]!.id, quantity: 1 }] };
    const responses = await runConcurrently(20, 20, () =>
      h.http.request('POST', '/v1/orders', { token: buyer.token, body, headers: { 'idempotency-key': 'burst-1' } }));
    assert.deepEqual(countBy(responses, (r) => String(r.status)), { 201: 20 });
    assert.equal(new Set(responses.map((r) => r.body.id)).size, 1);
    assert.equal(await scalar(h.system, 'select count(*) from orders where user_id = $1', [buyer.userId]), 1);
    assert.equal(await h.system.inventory.available(sale.items[0]!.id), 9);
  });

  it('when a key is replayed later, then the first result comes back marked as a replay', async () => {
    const { sale } = await h.createSale({ items: [{ stock: 10, perUserLimit: 5 }] });
    const buyer = h.buyerToken();
    const body = { items: [{ saleItemId: sale.items[0]!.id, quantity: 2 }] };
    const first = await h.http.request('POST', '/v1/orders', { token: buyer.token, body, headers: { 'idempotency-key': 'k-replay' } });
    const second = await h.http.request('POST', '/v1/orders', { token: buyer.token, body, headers: { 'idempotency-key': 'k-replay' } });
    assert.equal(first.status, 201);
    assert.equal(second.status, 201);
    assert.equal(second.body.id, first.body.id);
    assert.equal(second.headers['idempotent-replayed'], 'true');
    assert.equal(await h.system.inventory.available(sale.items[0]!.id), 8);
  });

  it('when a key is reused with a different body, then 422 idempotency_key_reused and nothing changes', async () => {
    const { sale } = await h.createSale({ items: [{ stock: 10, perUserLimit: 5 }] });
    const buyer = h.buyerToken();
    const item = sale.items[0]!.id;
    await h.http.request('POST', '/v1/orders', { token: buyer.token, body: { items: [{ saleItemId: item, quantity: 1 }] }, headers: { 'idempotency-key': 'k-diff' } });
    const res = await h.http.request('POST', '/v1/orders', { token: buyer.token, body: { items: [{ saleItemId: item, quantity: 3 }] }, headers: { 'idempotency-key': 'k-diff' } });
    assert.equal(res.status, 422);
    assert.equal(res.body.error.code, 'idempotency_key_reused');
    assert.equal(await h.system.inventory.available(item), 9);
  });

  it('when two buyers use the same key, then each gets its own order (keys are per buyer)', async () => {
    const { sale } = await h.createSale({ items: [{ stock: 10 }] });
    const body = { items: [{ saleItemId: sale.items[0]!.id, quantity: 1 }] };
    const a = await h.http.request('POST', '/v1/orders', { token: h.buyerToken().token, body, headers: { 'idempotency-key': 'shared' } });
    const b = await h.http.request('POST', '/v1/orders', { token: h.buyerToken().token, body, headers: { 'idempotency-key': 'shared' } });
    assert.equal(a.status, 201);
    assert.equal(b.status, 201);
    assert.notEqual(a.body.id, b.body.id);
  });

  it('when an attempt was refused, then the key is not consumed and a later retry can succeed', async () => {
    const { sale } = await h.createSale({ items: [{ stock: 1 }] });
    const item = sale.items[0]!.id;
    const holder = h.buyerToken();
    const held = await h.http.request('POST', '/v1/orders', { token: holder.token, body: { items: [{ saleItemId: item, quantity: 1 }] } });
    const buyer = h.buyerToken();
    const body = { items: [{ saleItemId: item, quantity: 1 }] };
    const refused = await h.http.request('POST', '/v1/orders', { token: buyer.token, body, headers: { 'idempotency-key': 'retry-me' } });
    assert.equal(refused.body.error.code, 'sold_out');
    await h.http.request('POST', `/v1/orders/${held.body.id}/cancel`, { token: holder.token });
    const retried = await h.http.request('POST', '/v1/orders', { token: buyer.token, body, headers: { 'idempotency-key': 'retry-me' } });
    assert.equal(retried.status, 201);
  });

  it('when a cart add is sent 10 times concurrently with one key, then one hold', async () => {
    const { sale } = await h.createSale({ holdMode: 'cart', items: [{ stock: 5, perUserLimit: 5 }] });
    const buyer = h.buyerToken();
    const responses = await runConcurrently(10, 10, () =>
      h.http.request('POST', '/v1/cart/items', { token: buyer.token, body: { saleItemId: sale.items[0]!.id, quantity: 1 }, headers: { 'idempotency-key': 'cart-1' } }));
    assert.deepEqual(countBy(responses, (r) => String(r.status)), { 201: 10 });
    assert.equal(new Set(responses.map((r) => r.body.holdId)).size, 1);
    assert.equal(await h.system.inventory.available(sale.items[0]!.id), 4);
  });

  it('when a cancel is repeated with its key, then the stored answer comes back instead of 409', async () => {
    const { sale } = await h.createSale();
    const buyer = h.buyerToken();
    const placed = await h.http.request('POST', '/v1/orders', { token: buyer.token, body: { items: [{ saleItemId: sale.items[0]!.id, quantity: 1 }] } });
    const first = await h.http.request('POST', `/v1/orders/${placed.body.id}/cancel`, { token: buyer.token, headers: { 'idempotency-key': 'cancel-1' } });
    const second = await h.http.request('POST', `/v1/orders/${placed.body.id}/cancel`, { token: buyer.token, headers: { 'idempotency-key': 'cancel-1' } });
    assert.equal(first.status, 200);
    assert.equal(second.status, 200);
    assert.equal(second.body.status, 'CANCELLED');
  });

  it('after all of it, the audit is clean', async () => {
    await h.system.broker.drain();
    assert.deepEqual((await h.system.audit({ quiet: true })).violations, []);
  });
});
