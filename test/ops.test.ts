import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startHarness, type Harness } from './support/harness.ts';

describe('operational endpoints', () => {
  let h: Harness;
  before(async () => { h = await startHarness(); });
  after(() => h.close());

  it('when probed, then /health is live and /ready names each dependency', async () => {
    assert.deepEqual((await h.http.request('GET', '/health')).body, { status: 'ok' });
    const ready = await h.http.request('GET', '/ready');
    assert.equal(ready.status, 200);
    assert.deepEqual(ready.body.checks, { database: 'ok', gate: 'ok', broker: 'ok' });
  });

  it('when scraped after a purchase, then /metrics has requests, latencies, holds, outcomes, outbox and dead letters', async () => {
    const { sale } = await h.createSale({ items: [{ stock: 1 }] });
    await h.http.request('POST', '/v1/orders', { token: h.buyerToken().token, body: { items: [{ saleItemId: sale.items[0]!.id, quantity: 1 }] } });
    await h.http.request('POST', '/v1/orders', { token: h.buyerToken().token, body: { items: [{ saleItemId: sale.items[0]!.id, quantity: 1 }] } });
    const res = await h.http.request('GET', '/metrics');
    assert.equal(res.status, 200);
    const text = String(res.body);
    for (const line of [
      'flashsale_http_requests_total{method="POST",route="/v1/orders",status="201"} 1',
      'flashsale_purchase_attempts_total{kind="order",outcome="sold_out"} 1',
      'flashsale_holds_created_total 1',
      'flashsale_group_commit_batch_size_count',
      'flashsale_http_request_duration_seconds_bucket',
      'flashsale_outbox_pending',
      'flashsale_outbox_lag_seconds',
      'flashsale_dead_letters 0',
    ]) assert.ok(text.includes(line), `metrics lack ${line}`);
  });

  it('when a request carries X-Request-Id, then the id is kept; unknown routes get a coded 404', async () => {
    const res = await h.http.request('GET', '/v1/nowhere', { headers: { 'x-request-id': 'trace-me-123' } });
    assert.equal(res.status, 404);
    assert.equal(res.body.error.code, 'route_not_found');
  });
});
