import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createOpsServer } from '../src/ops/server.ts';
import { startHarness, type Harness } from './support/harness.ts';

/** One series' value in a Prometheus exposition, or undefined when absent. */
function series(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (rest[0] !== '{' && rest[0] !== ' ') continue;
    if (!Object.entries(labels).every(([k, v]) => rest.includes(`${k}="${v}"`))) continue;
    return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return undefined;
}

describe('metrics of every role', () => {
  let h: Harness;
  before(async () => { h = await startHarness(); });
  after(() => h.close());

  it('when a sale sells, then /metrics has gate decisions, the burn-down, holds, orders, payments and queues by consumer', async () => {
    const { sale } = await h.createSale({ items: [{ stock: 3 }] });
    const item = sale.items[0]!.id;
    await h.placeOrder(h.buyerToken().token, item);
    const text = String((await h.http.request('GET', '/metrics')).body);
    assert.equal(series(text, 'flashsale_gate_decisions_total', { outcome: 'admitted' }), 1);
    assert.equal(series(text, 'flashsale_stock_units', { sale_item_id: item, state: 'held' }), 1);
    assert.equal(series(text, 'flashsale_stock_units', { sale_item_id: item, state: 'available' }), 2);
    assert.equal(series(text, 'flashsale_stock_initial_units', { sale_item_id: item }), 3);
    assert.ok((series(text, 'flashsale_hold_units', { state: 'held' }) ?? 0) >= 1);
    assert.ok((series(text, 'flashsale_orders', { status: 'PENDING_PAYMENT' }) ?? 0) >= 1);
    assert.equal(series(text, 'flashsale_payments', { status: 'succeeded' }), 0);
    assert.equal(series(text, 'flashsale_refunds', { status: 'pending' }), 0);
    assert.equal(series(text, 'flashsale_queue_messages', { consumer: 'notifications', queue: 'dead' }), 0);
    assert.equal(series(text, 'flashsale_process_info', { role: 'command' }), 1);
    assert.equal(series(text, 'flashsale_metrics_sample_errors_total'), undefined, 'no sample failed');
  });

  it('when the gate admits what the database no longer has, then the oversold guard trip is counted and the buyer gets sold_out', async () => {
    const { sale } = await h.createSale({ items: [{ stock: 1, perUserLimit: 5 }] });
    const item = sale.items[0]!;
    // A wrong gate: it believes 5 units are left where the database has 1.
    await h.system.gate.load([{ saleItemId: item.id, available: 5, perUserLimit: 5, startsAt: Date.parse(String(sale.startsAt)), endsAt: Date.parse(String(sale.endsAt)) }], []);
    const res = await h.http.request('POST', '/v1/orders', { token: h.buyerToken().token, body: { items: [{ saleItemId: item.id, quantity: 2 }] } });
    assert.equal(res.status, 409);
    assert.equal(res.body.error.code, 'sold_out');
    const text = String((await h.http.request('GET', '/metrics')).body);
    assert.equal(series(text, 'flashsale_oversold_guard_trips_total', { reason: 'sold_out' }), 1);
  });

  it('when a worker-style process serves its probes, then /health, /ready and /metrics answer on its own port', async () => {
    const ops = await createOpsServer(h.system);
    try {
      const url = await ops.listen({ host: '127.0.0.1', port: 0 });
      assert.deepEqual(await (await fetch(`${url}/health`)).json(), { status: 'ok' });
      const ready = await fetch(`${url}/ready`);
      assert.equal(ready.status, 200);
      const metrics = await fetch(`${url}/metrics`);
      assert.equal(metrics.status, 200);
      assert.match(metrics.headers.get('content-type') ?? '', /text\/plain/);
      assert.ok(series(await metrics.text(), 'flashsale_outbox_lag_seconds') !== undefined);
    } finally {
      await ops.close();
    }
  });

  it('when METRICS_TOKEN is set, then the worker\'s /metrics wants it and its probes do not', async () => {
    const token = 'metrics-token-0123456789';
    const ops = await createOpsServer({ ...h.system, config: { ...h.system.config, METRICS_TOKEN: token } });
    try {
      const url = await ops.listen({ host: '127.0.0.1', port: 0 });
      assert.equal((await fetch(`${url}/metrics`)).status, 401);
      assert.equal((await fetch(`${url}/metrics`, { headers: { authorization: 'Bearer wrong-token-0123456789' } })).status, 401);
      assert.equal((await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${token}` } })).status, 200);
      assert.equal((await fetch(`${url}/health`)).status, 200);
    } finally {
      await ops.close();
    }
  });

  it('when the payment simulator is scraped, then it answers without an API key, with its RED and intent series', async () => {
    await fetch(`${h.pspUrl}/health`);
    const res = await fetch(`${h.pspUrl}/metrics`);
    assert.equal(res.status, 200);
    const text = await res.text();
    assert.equal(series(text, 'flashsale_process_info', { role: 'psp' }), 1);
    assert.ok((series(text, 'flashsale_http_requests_total', { route: '/health', status: '200' }) ?? 0) >= 1);
  });
});
