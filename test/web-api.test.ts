import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startHarness, type Harness } from './support/harness.ts';
import { openStream } from './support/sse.ts';

describe('live stock over HTTP (GET /v1/flash-sales/{id}/live)', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ config: { LIVE_STREAMS_MAX: 2, LIVE_INTERVAL_MS: 50, WEB_ORIGINS: 'http://shop.test, https://Shop.Example:443/' } });
  });
  after(() => h.close());

  it('when the client does not ask for events, then one JSON snapshot of the gate’s counters', async () => {
    const { sale } = await h.createSale({ items: [{ stock: 3 }, { stock: 1 }] });
    const res = await h.http.request('GET', `/v1/flash-sales/${sale.id}/live`);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.saleId, sale.id);
    assert.equal(res.body.status, 'active');
    assert.deepEqual(res.body.items.map((i: any) => [i.id, i.remaining, i.soldOut]), sale.items.map((i) => [i.id, i.stock, false]));
    assert.ok(!Number.isNaN(Date.parse(res.body.serverTime)));
  });

  it('when a sale does not exist, then 404 not_found', async () => {
    const res = await h.http.request('GET', '/v1/flash-sales/00000000-0000-4000-8000-000000000000/live');
    assert.equal(res.status, 404);
    assert.equal(res.body.error.code, 'not_found');
  });

  it('when a buyer takes the last unit, then every watcher is sent the new count and sold out, without asking again', async () => {
    const { sale } = await h.createSale({ items: [{ stock: 2 }] });
    const item = sale.items[0]!;
    const stream = await openStream(`${h.url}/v1/flash-sales/${sale.id}/live`);
    try {
      assert.equal(stream.status, 200);
      assert.match(stream.contentType ?? '', /^text\/event-stream/);
      const first = await stream.next();
      assert.equal(first.items[0].remaining, 2);
      await h.placeOrder(h.buyerToken().token, item.id);
      const second = await stream.next();
      assert.deepEqual([second.items[0].remaining, second.items[0].soldOut], [1, false]);
      await h.placeOrder(h.buyerToken().token, item.id);
      const third = await stream.next();
      assert.deepEqual([third.items[0].remaining, third.items[0].soldOut], [0, true]);
    } finally {
      stream.close();
    }
  });

  it('when a scheduled sale opens, then its watchers are told, with no order placed', async () => {
    const { sale } = await h.createSale({ startsInMs: 400 });
    const stream = await openStream(`${h.url}/v1/flash-sales/${sale.id}/live`);
    try {
      assert.equal((await stream.next()).status, 'scheduled');
      assert.equal((await stream.next(3000)).status, 'active');
    } finally {
      stream.close();
    }
  });

  it('when the process already serves its maximum of streams, then one more is refused with 503 overloaded and Retry-After, and a closed stream frees its place', async () => {
    const { sale } = await h.createSale();
    const url = `${h.url}/v1/flash-sales/${sale.id}/live`;
    const a = await openStream(url);
    const b = await openStream(url);
    await a.next();
    await b.next();
    const refused = await fetch(url, { headers: { accept: 'text/event-stream' } });
    assert.equal(refused.status, 503);
    assert.equal(((await refused.json()) as any).error.code, 'overloaded');
    assert.ok(refused.headers.get('retry-after'));
    // The JSON snapshot is still served.
    assert.equal((await h.http.request('GET', `/v1/flash-sales/${sale.id}/live`)).status, 200);
    a.close();
    let c: Awaited<ReturnType<typeof openStream>> | undefined;
    for (let i = 0; i < 50 && c?.status !== 200; i++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      c = await openStream(url);
      if (c.status !== 200) c = undefined;
    }
    assert.equal(c?.status, 200);
    c!.close();
    b.close();
  });
});

describe('paying from the web pages (returnUrl)', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ config: { WEB_ORIGINS: 'http://shop.test, https://Shop.Example:443/', LIVE_ORDER_INTERVAL_MS: 50 } });
  });
  after(() => h.close());

  async function pendingOrder(): Promise<{ token: string; orderId: string }> {
    const { sale } = await h.createSale();
    const { token } = h.buyerToken();
    return { token, orderId: await h.placeOrder(token, sale.items[0]!.id) };
  }

  it('when the return URL is on a web origin, then the hosted page sends the buyer back there after paying', async () => {
    const { token, orderId } = await pendingOrder();
    const returnUrl = `https://shop.example/#/orders/${orderId}`;
    const res = await h.http.request('POST', `/v1/orders/${orderId}/payment`, { token, body: { returnUrl } });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    const pay = await fetch(`${h.pspUrl}/pay/${res.body.providerPaymentId}/pay`, { method: 'POST', redirect: 'manual' });
    assert.equal(pay.status, 303);
    assert.equal(pay.headers.get('location'), returnUrl);
  });

  it('when the return URL is on another origin, is not http(s), or is no URL, then 422 and no payment is started', async () => {
    const { token, orderId } = await pendingOrder();
    for (const returnUrl of ['https://evil.example/#/orders/1', 'javascript:alert(1)', 'not a url', 'http://shop.test.evil.example/']) {
      const res = await h.http.request('POST', `/v1/orders/${orderId}/payment`, { token, body: { returnUrl } });
      assert.equal(res.status, 422, returnUrl);
      assert.equal(res.body.error.code, 'validation_failed');
    }
    assert.equal(Number((await h.system.db.query<{ n: number }>('select count(*)::int as n from payments where order_id = $1', [orderId]))[0]?.n), 0);
  });

  it('when a buyer watches their order (GET /v1/orders/{id}/live) and pays, then the stream pushes PAID once the webhook lands; a cancel is pushed too; nobody else may watch it', async () => {
    const { token, orderId } = await pendingOrder();
    const url = `${h.url}/v1/orders/${orderId}/live`;
    assert.equal((await openStream(url)).status, 401);
    const stranger = await openStream(url, { event: 'order', token: h.buyerToken().token });
    assert.equal(stranger.status, 404, 'another buyer’s order is as missing as one that does not exist');
    const json = await h.http.request('GET', `/v1/orders/${orderId}/live`, { token });
    assert.equal(json.body.status, 'PENDING_PAYMENT');

    const stream = await openStream(url, { event: 'order', token });
    assert.equal(stream.status, 200);
    assert.match(stream.contentType ?? '', /^text\/event-stream/);
    const first = await stream.next();
    assert.deepEqual([first.id, first.status, first.shipments], [orderId, 'PENDING_PAYMENT', []]);
    const payment = await h.http.request('POST', `/v1/orders/${orderId}/payment`, { token });
    await fetch(`${h.pspUrl}/pay/${payment.body.providerPaymentId}/pay`, { method: 'POST', redirect: 'manual' });
    const paid = await stream.next(5000);
    assert.equal(paid.status, 'PAID');
    stream.close();

    const other = await pendingOrder();
    const watching = await openStream(`${h.url}/v1/orders/${other.orderId}/live`, { event: 'order', token: other.token });
    assert.equal((await watching.next()).status, 'PENDING_PAYMENT');
    assert.equal((await h.http.request('POST', `/v1/orders/${other.orderId}/cancel`, { token: other.token })).status, 200);
    assert.equal((await watching.next()).status, 'CANCELLED');
    watching.close();
  });

  it('when an order watched on its stream is not paid in time, then the stream pushes EXPIRED', async () => {
    const { sale } = await h.createSale({ paymentWindowS: 1 });
    const { token } = h.buyerToken();
    const orderId = await h.placeOrder(token, sale.items[0]!.id);
    const stream = await openStream(`${h.url}/v1/orders/${orderId}/live`, { event: 'order', token });
    assert.equal((await stream.next()).status, 'PENDING_PAYMENT');
    assert.equal((await stream.next(10_000)).status, 'EXPIRED');
    stream.close();
  });

  it('when no return URL is given, then the hosted page shows its own result as before', async () => {
    const { token, orderId } = await pendingOrder();
    const res = await h.http.request('POST', `/v1/orders/${orderId}/payment`, { token });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    const pay = await fetch(`${h.pspUrl}/pay/${res.body.providerPaymentId}/pay`, { method: 'POST', redirect: 'manual' });
    assert.equal(pay.headers.get('location'), `/pay/${res.body.providerPaymentId}?result=succeeded`);
  });

  it('when a state-changing request carries only a cookie, then it is refused 401: the pages send the token as a bearer header, so a cross-site form cannot act for the buyer', async () => {
    const { token, orderId } = await pendingOrder();
    const { sale } = await h.createSale();
    const attempts: Array<[string, unknown]> = [
      [`/v1/orders/${orderId}/cancel`, undefined],
      [`/v1/orders/${orderId}/payment`, {}],
      ['/v1/orders', { items: [{ saleItemId: sale.items[0]!.id, quantity: 1 }] }],
    ];
    for (const [path, body] of attempts) {
      const res = await h.http.request('POST', path, { headers: { cookie: `token=${token}; authorization=Bearer%20${token}`, origin: 'https://evil.example' }, body });
      assert.equal(res.status, 401, `POST ${path}: ${JSON.stringify(res.body)}`);
    }
    assert.equal((await h.http.request('GET', `/v1/flash-sales/${sale.id}/live`)).body.items[0].remaining, sale.items[0]!.stock);
    const order = await h.http.request('GET', `/v1/orders/${orderId}`, { token });
    assert.equal(order.body.status, 'PENDING_PAYMENT');
  });
});

describe('the web pages and the numbers behind them', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
  });
  after(() => h.close());

  it('when a browser asks for /, then it gets the page, and the libraries from node_modules under /vendor/ — only the files named', async () => {
    const page = await fetch(`${h.url}/`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type') ?? '', /^text\/html/);
    const html = await page.text();
    assert.match(html, /<script type="importmap">/);
    const policy = page.headers.get('content-security-policy') ?? '';
    assert.match(policy, /script-src 'self' 'sha256-[A-Za-z0-9+/=]+'/, 'scripts from this origin and the import map by its hash');
    assert.match(policy, /frame-ancestors 'none'/);
    assert.match(policy, /connect-src 'self'/);
    for (const path of ['/app.js', '/api.js', '/style.css', '/vendor/eventsource/index.js', '/vendor/eventsource/EventSource.js', '/vendor/eventsource-parser/index.js', '/vendor/eventsource-parser/parse.js', '/vendor/preact/preact.module.js', '/vendor/preact-hooks/hooks.module.js', '/vendor/htm/htm.module.js', '/vendor/uplot/uPlot.esm.js', '/vendor/uplot/uPlot.min.css']) {
      const res = await fetch(`${h.url}${path}`);
      assert.equal(res.status, 200, path);
      assert.equal(res.headers.get('x-content-type-options'), 'nosniff', path);
      await res.arrayBuffer();
    }
    for (const path of ['/vendor/preact/preact.js', '/vendor/preact/../package.json', '/vendor/uplot/uPlot.d.ts', '/index.ts']) {
      assert.equal((await fetch(`${h.url}${path}`)).status, 404, path);
    }
    // The API's own 404 is untouched.
    const missing = await h.http.request('GET', '/v1/nothing-here');
    assert.equal(missing.status, 404);
    assert.equal(missing.body.error.code, 'route_not_found');
  });

  it('when a merchant logs in, then the answer names their shop; a buyer’s names none', async () => {
    const { shop } = await h.system.accounts.createMerchant('shopkeeper@web.test', 'merchant-password', 'Corner shop');
    const merchant = await h.http.request('POST', '/v1/auth/login', { body: { email: 'shopkeeper@web.test', password: 'merchant-password' } });
    assert.equal(merchant.status, 200);
    assert.deepEqual(merchant.body.shop, { id: shop.id, ownerId: shop.ownerId, name: 'Corner shop' });
    await h.http.request('POST', '/v1/auth/register', { body: { email: 'shopper@web.test', password: 'buyer-password' } });
    const buyer = await h.http.request('POST', '/v1/auth/login', { body: { email: 'shopper@web.test', password: 'buyer-password' } });
    assert.equal(buyer.body.shop, null);
  });

  it('when an admin asks for the stats of a sale, then attempts by outcome, stock by state, holds and orders by status and the backlog', async () => {
    const { sale } = await h.createSale({ items: [{ stock: 2, perUserLimit: 1 }] });
    const item = sale.items[0]!.id;
    const token = h.buyerToken().token;
    await h.placeOrder(token, item);
    await h.http.request('POST', '/v1/orders', { token, body: { items: [{ saleItemId: item, quantity: 1 }] } });
    const res = await h.http.request('GET', `/v1/admin/stats?saleId=${sale.id}`, { token: h.adminToken() });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(res.body.attempts, { accepted: 1, limit_exceeded: 1 }, 'this sale’s attempts only');
    assert.equal(res.body.attemptsScope, 'this-process', 'embedded: no Redis, one API process');
    const all = await h.http.request('GET', '/v1/admin/stats', { token: h.adminToken() });
    assert.ok(all.body.attempts.accepted >= 1);
    assert.deepEqual(res.body.stock, { initial: 2, available: 1, held: 1, sold: 0, writtenOff: 0 });
    assert.deepEqual(res.body.holds, [{ status: 'held', holds: 1, units: 1 }]);
    assert.deepEqual(res.body.orders, [{ status: 'PENDING_PAYMENT', orders: 1 }]);
    assert.ok(res.body.allStock.initial >= 2);
    assert.equal(typeof res.body.broker.outboxLagSeconds, 'number');
    const consumers = (res.body.queues as Array<{ consumer: string; work: number; dead: number }>).map((q) => q.consumer);
    for (const consumer of ['inventory', 'order', 'payment', 'notification']) assert.ok(consumers.some((c) => c.startsWith(consumer)), `a queue of ${consumer}: ${consumers.join(', ')}`);
    assert.equal((await h.http.request('GET', '/v1/admin/stats', { token })).status, 403);
    assert.equal((await h.http.request('GET', '/v1/admin/stats')).status, 401);
  });
});

describe('the pages’ words for refusals', () => {
  it('when the API refuses a purchase, then the buyer reads why, and how long to wait when the server says', async () => {
    const web = await import('../src/web/public/api.js' as string) as { ApiError: new (status: number, code: string, message: string, retryAfterS?: number) => Error; describeError(error: unknown): string };
    const words = (code: string, status = 409, retryAfterS?: number) => web.describeError(new web.ApiError(status, code, 'server words', retryAfterS));
    assert.match(words('sold_out'), /Sold out/);
    assert.match(words('limit_exceeded'), /as many as one buyer may get/);
    assert.match(words('sale_not_active'), /not open/);
    assert.match(words('rate_limited', 429, 7), /Too many requests.*Try again in 7 s\./);
    assert.match(words('overloaded', 503, 2), /busy.*Try again in 2 s\./);
    assert.match(words('payment_window_closed'), /time to pay/);
    assert.equal(words('something_new'), 'server words');
  });
});
