import assert from 'node:assert/strict';
import { createHmac, generateKeyPairSync, randomUUID, sign as signWithKey } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ConfigError, loadConfig } from '../src/platform/config.ts';
import { HttpPaymentGateway } from '../src/platform/payment-provider/http-client.ts';
import { TokenService } from '../src/platform/tokens.ts';
import { signatureHeader } from '../src/psp/index.ts';
import type { OrderCreated } from '../src/order/contracts.ts';
import { countBy, httpClient, runConcurrently, scalar, startHarness, until, type Harness, type HttpClient, type HttpResponse } from './support/harness.ts';
import { freePort, startCliProcess, stopProcess, type CliProcess } from './support/process.ts';

/**
 * The security suite (issue #6), one block per risk: OWASP API1 (object-level authorization), API5
 * (function-level authorization), API3 (mass assignment), bearer tokens, webhooks, idempotency keys,
 * API4 (resource consumption) and secrets. Routes are enumerated from the app's own OpenAPI document,
 * so a new route that nobody classified here makes the suite fail.
 */

// ---------------------------------------------------------------------------------------------
// The classification of every operation. A new operation in /openapi.json must be added here.
// ---------------------------------------------------------------------------------------------

type Role = 'buyer' | 'merchant' | 'admin';

/** Operations with a path parameter, and who may reach the object it names. */
const ID_ROUTES = {
  'GET /v1/orders/{id}': 'owner',
  'GET /v1/orders/{id}/live': 'owner',
  'POST /v1/orders/{id}/cancel': 'owner',
  'POST /v1/orders/{id}/payment': 'owner',
  'DELETE /v1/cart/items/{holdId}': 'owner',
  'GET /v1/flash-sales/{id}': 'public',
  'GET /v1/flash-sales/{id}/live': 'public',
  'PATCH /v1/flash-sales/{id}': 'shop',
  'POST /v1/flash-sales/{id}/cancel': 'shop',
  'POST /v1/flash-sales/{id}/items/{itemId}/stock': 'shop',
  'POST /v1/admin/orders/{id}/cancel': 'admin',
  'GET /v1/admin/dead-letters/{consumer}/{messageId}': 'admin',
  'POST /v1/admin/dead-letters/{consumer}/{messageId}/replay': 'admin',
  'POST /v1/shop/orders/{id}/shipments': 'shop',
  'PATCH /v1/shop/shipments/{id}': 'shop',
  'POST /v1/shop/orders/{id}/lines/{saleItemId}/cancel': 'shop',
} as const;

/** The one role each secured operation admits. */
const ROLES: Record<string, Role> = {
  createMerchant: 'admin', audit: 'admin', reconcile: 'admin', adminStats: 'admin', adminCancelOrder: 'admin', listDeadLetters: 'admin', getDeadLetter: 'admin', replayDeadLetter: 'admin',
  createProduct: 'merchant', createFlashSale: 'merchant', updateFlashSale: 'merchant', cancelFlashSale: 'merchant', addSaleStock: 'merchant', listShopNotifications: 'merchant',
  listShopOrders: 'merchant', exportShopOrders: 'merchant', createShipment: 'merchant', updateShipment: 'merchant', cancelOrderLine: 'merchant',
  createOrder: 'buyer', listOrders: 'buyer', getOrder: 'buyer', watchOrder: 'buyer', cancelOrder: 'buyer', payOrder: 'buyer', listNotifications: 'buyer',
  addCartItem: 'buyer', getCart: 'buyer', removeCartItem: 'buyer', checkout: 'buyer', setMyPhone: 'buyer', deleteMyPhone: 'buyer',
};
/** Operations anyone may call without a token. */
const PUBLIC = ['register', 'login', 'listProducts', 'listFlashSales', 'getFlashSale', 'watchFlashSale', 'paymentWebhook'];

/** Pagination caps, as documented in docs/api.md. */
const LIMIT_CAPS: Record<string, number> = { listProducts: 100, listFlashSales: 100, listOrders: 100, listNotifications: 100, listShopNotifications: 100, listDeadLetters: 500, listShopOrders: 100 };

/** Fields a client must never set: sent along with otherwise valid bodies. */
const ZERO_UUID = '00000000-0000-4000-8000-000000000000';
const FORGED: Record<string, unknown> = {
  id: ZERO_UUID, userId: ZERO_UUID, ownerId: ZERO_UUID, owner: ZERO_UUID, shopId: ZERO_UUID, role: 'admin', status: 'PAID', price: 0,
  stock: 1_000_000, amount: 0, totalAmount: 0, unitPrice: 0, currency: 'EUR', createdAt: '2000-01-01T00:00:00.000Z', expiresAt: '2999-01-01T00:00:00.000Z',
};
const FORGED_LINE: Record<string, unknown> = { id: ZERO_UUID, unitPrice: 0, price: 0, userId: ZERO_UUID, holdId: ZERO_UUID, remaining: 1_000_000, productName: 'x' };

// ---------------------------------------------------------------------------------------------

interface Schema {
  type?: string;
  properties?: Record<string, Schema>;
  items?: Schema;
  additionalProperties?: unknown;
  maximum?: number;
  anyOf?: Schema[];
  oneOf?: Schema[];
  allOf?: Schema[];
  $ref?: string;
}
interface Operation {
  operationId: string;
  tags?: string[];
  summary?: string;
  security?: unknown[];
  parameters?: Array<{ in: string; name: string; schema: Schema }>;
  requestBody?: { content: Record<string, { schema: Schema }> };
  responses: Record<string, unknown>;
}
interface OpenApi { paths: Record<string, Record<string, Operation>>; components?: { schemas?: Record<string, Schema> } }
interface Op { key: string; method: string; path: string; operation: Operation }

const b64url = (value: unknown) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');
/** A JWT built by hand, so that every part of it can be wrong on purpose. */
function hmacJwt(header: Record<string, unknown>, claims: Record<string, unknown>, secret: string, hash = 'sha256'): string {
  const input = `${b64url(header)}.${b64url(claims)}`;
  return `${input}.${createHmac(hash, secret).update(input).digest('base64url')}`;
}
const claimsOf = (token: string) => JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;
const nowS = () => Math.floor(Date.now() / 1000);

/** Requests sent per point, printed at the end. */
const counts: Record<string, number> = {};
function counted(point: string, client: () => HttpClient) {
  return <T = any>(method: string, path: string, opts: Parameters<HttpClient['request']>[2] = {}): Promise<HttpResponse<T>> => {
    counts[point] = (counts[point] ?? 0) + 1;
    return client().request<T>(method, path, opts);
  };
}

function assertError(res: HttpResponse, status: number, code: string, label = '') {
  assert.equal(res.status, status, `${label} ${res.status} ${JSON.stringify(res.body)}`);
  assert.equal(res.body?.error?.code, code, `${label} ${JSON.stringify(res.body)}`);
  assert.equal(typeof res.body.error.message, 'string');
  assert.ok(res.body.error.message.length > 0);
}

describe('security (issue #6)', () => {
  let h: Harness;
  let doc: OpenApi;
  let ops: Op[];
  const byId = (operationId: string) => ops.find((o) => o.operation.operationId === operationId)!;

  // fixtures
  let merchantA: string;
  let shopA: string;
  let productA: string;
  let orderItem: string;
  let cartItem: string;
  let merchantB: string;
  let admin: string;
  let alice: { token: string; userId: string };
  let bob: { token: string; userId: string };
  const poisonBuyer = { token: '', userId: '' };

  const placeOrder = (token: string) => h.placeOrder(token, orderItem);
  /** An order of merchant A's sale, paid at the simulator; its shipment opened. */
  const paidOrder = async (token: string) => {
    const id = await placeOrder(token);
    const payment = (await h.http.request('POST', `/v1/orders/${id}/payment`, { token })).body;
    await fetch(`${h.pspUrl}/pay/${payment.providerPaymentId}/pay`, { method: 'POST', redirect: 'manual' });
    await until(async () => {
      await h.system.broker.drain();
      return (await h.http.request('GET', `/v1/orders/${id}`, { token })).body.status === 'PAID';
    }, 'the payment');
    await h.system.broker.drain();
    return id;
  };
  /** A shipment of merchant A's, shipped. */
  const shippedShipment = async (token: string) => {
    const id = await paidOrder(token);
    const res = await h.http.request('POST', `/v1/shop/orders/${id}/shipments`, { token: merchantA, body: { carrier: 'DHL', trackingNumber: 'SEC-1' } });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    return res.body.id as string;
  };
  const addHold = (token: string) => h.holdInCart(token, cartItem);
  /** The dead letter of the poisoned consumer (created in `before`; dead again after each replay). */
  const deadLetter = async () => {
    await h.system.broker.drain();
    const letter = (await h.system.broker.listDeadLetters(100)).find((d) => d.consumer === 'sec-poison');
    assert.ok(letter, 'the poisoned consumer has a dead letter');
    return letter;
  };

  /** Everything a refused request could have changed. */
  /** A scheduled sale of merchant A's shop (one item of product A, 3 units), made directly. */
  async function scheduledSaleOfA() {
    const startsAt = new Date(Date.now() + 3600_000);
    return h.system.catalog.createFlashSale(shopA, {
      name: 'Scheduled', startsAt, endsAt: new Date(startsAt.getTime() + 3600_000), paymentWindowS: 600, holdMode: 'order',
      items: [{ productId: productA, flashPrice: 700, stock: 3, perUserLimit: 1 }],
    });
  }

  async function snapshot(): Promise<Record<string, unknown>> {
    await h.system.broker.drain();
    const [row] = await h.system.db.query(`select
      (select count(*) from users) as users, (select count(*) from shops) as shops, (select count(*) from products) as products,
      (select count(*) from flash_sales) as flash_sales, (select count(*) from orders) as orders,
      (select coalesce(string_agg(status || '=' || n, ',' order by status), '') from (select status, count(*) as n from orders group by status) s) as order_statuses,
      (select count(*) from holds where status = 'held') as live_holds, (select count(*) from payments) as payments,
      (select count(*) from refunds) as refunds, (select count(*) from webhook_events) as webhook_events,
      (select count(*) from idempotency_keys) as idempotency_keys,
      (select coalesce(sum(version), 0) from flash_sales) as sale_versions, (select count(*) from flash_sales where cancelled_at is not null) as cancelled_sales,
      (select coalesce(sum(initial), 0) from stock_items) as initial_stock,
      (select coalesce(string_agg(phone, ',' order by phone), '') from users where phone is not null) as phones,
      (select coalesce(string_agg(status || '=' || n, ',' order by status), '') from (select status, count(*) as n from shipments group by status) s) as shipments,
      (select count(*) from order_items where cancelled_at is not null) as cancelled_lines`);
    return {
      ...row,
      deadLetters: (await h.system.broker.stats()).deadLetters,
      orderStock: await h.system.inventory.available(orderItem),
      cartStock: await h.system.inventory.available(cartItem),
    };
  }

  /**
   * The real CLI whose stdout the log test reads, with secrets of its own. It starts with the suite
   * (its start is slow: a fresh process, compiler and database) and is stopped at the end.
   */
  const secrets = { JWT_SECRET: `jwt-${randomUUID()}`, PSP_API_KEY: `sk_test_${randomUUID()}`, PSP_WEBHOOK_SECRET: `whsec_${randomUUID()}` };
  let loggedProcess: Promise<{ cli: CliProcess } | { error: unknown }>;
  async function startLoggedProcess(): Promise<CliProcess> {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    return startCliProcess(['start'], {
      ...secrets, NODE_ENV: 'development', LOG_LEVEL: 'trace', PORT: String(port), PSP_PORT: '0', DATA_DIR: 'memory://', PSP_DATA_DIR: 'memory://',
      SEED_DEMO: 'false', MAX_EVENT_LOOP_DELAY_MS: '0', BROKER_POLL_MS: '20',
      // Whatever the surrounding shell has, this child runs embedded with its own simulator.
      DATABASE_URL: '', REDIS_URL: '', AMQP_URL: '', SMTP_URL: '', PSP_URL: '', PSP_WEBHOOK_URL: '', PSP_PUBLIC_URL: '',
    }, { ready: { http: `${url}/ready` }, url, timeoutMs: 90_000 });
  }

  before(async () => {
    loggedProcess = startLoggedProcess().then((cli) => ({ cli }), (error: unknown) => ({ error }));
    h = await startHarness({ config: { BROKER_MAX_ATTEMPTS: 1 } });
    doc = (await h.http.request<OpenApi>('GET', '/openapi.json')).body;
    ops = Object.entries(doc.paths).flatMap(([path, methods]) =>
      Object.entries(methods).map(([method, operation]) => ({ key: `${method.toUpperCase()} ${path}`, method: method.toUpperCase(), path, operation })));

    const a = await h.createSale({ items: [{ stock: 500, perUserLimit: 100, flashPrice: 5000 }] });
    merchantA = a.merchantToken;
    shopA = a.shopId;
    productA = a.sale.items[0]!.productId;
    orderItem = a.sale.items[0]!.id;
    cartItem = (await h.createSale({ holdMode: 'cart', items: [{ stock: 500, perUserLimit: 100, flashPrice: 5000 }] })).sale.items[0]!.id;
    merchantB = (await h.createSale()).merchantToken;
    admin = h.adminToken();
    alice = h.buyerToken();
    bob = h.buyerToken();

    // A real dead letter: a consumer that always fails on one buyer's orders (one attempt allowed).
    Object.assign(poisonBuyer, h.buyerToken());
    h.system.broker.consume('sec-poison', ['order.created'], async (tx, message) => {
      if ((message.payload as OrderCreated).userId === poisonBuyer.userId) throw new Error('poisoned on purpose');
      await tx.query('select 1');
    });
    await placeOrder(poisonBuyer.token);
    await deadLetter();
  });

  after(async () => {
    console.log('security requests per point:');
    for (const [point, n] of Object.entries(counts)) console.log(`  ${point.padEnd(34)} ${String(n).padStart(4)}`);
    console.log(`  ${'total'.padEnd(34)} ${String(Object.values(counts).reduce((x, y) => x + y, 0)).padStart(4)}`);
    await h?.close();
    const started = await loggedProcess;
    if (started && 'cli' in started) await stopProcess(started.cli);
  });

  // ============================================================================================
  describe('API1 object-level authorization', () => {
    const send = counted('API1 object-level authorization', () => h.http);

    it('when the OpenAPI document lists the operations with a path parameter, then each one is classified and covered here', () => {
      const withParams = ops.filter((o) => o.path.includes('{')).map((o) => o.key).sort();
      assert.deepEqual(withParams, Object.keys(ID_ROUTES).sort(), 'a route with a path parameter is not covered by the object-level authorization tests');
      for (const o of ops.filter((x) => x.path.includes('{'))) {
        const scope = ID_ROUTES[o.key as keyof typeof ID_ROUTES];
        if (scope === 'public') assert.equal(o.operation.security, undefined, `${o.key} is public`);
        else assert.ok(o.operation.responses['404'], `${o.key} documents 404`);
      }
    });

    /** Per owner-scoped route: make alice's object, then let bob try it. */
    const ownerCases: Record<string, { make: () => Promise<string>; path: (id: string) => string; method: string; ok: number }> = {
      'GET /v1/orders/{id}': { make: () => placeOrder(alice.token), method: 'GET', path: (id) => `/v1/orders/${id}`, ok: 200 },
      'GET /v1/orders/{id}/live': { make: () => placeOrder(alice.token), method: 'GET', path: (id) => `/v1/orders/${id}/live`, ok: 200 },
      'POST /v1/orders/{id}/cancel': { make: () => placeOrder(alice.token), method: 'POST', path: (id) => `/v1/orders/${id}/cancel`, ok: 200 },
      'POST /v1/orders/{id}/payment': { make: () => placeOrder(alice.token), method: 'POST', path: (id) => `/v1/orders/${id}/payment`, ok: 201 },
      'DELETE /v1/cart/items/{holdId}': { make: () => addHold(alice.token), method: 'DELETE', path: (id) => `/v1/cart/items/${id}`, ok: 204 },
    };

    it('when every owner-scoped route is in the table of cases, then none is left untested', () => {
      const owned = Object.entries(ID_ROUTES).filter(([, scope]) => scope === 'owner').map(([key]) => key).sort();
      assert.deepEqual(Object.keys(ownerCases).sort(), owned);
    });

    for (const [route, c] of Object.entries(ownerCases)) {
      it(`when a buyer calls ${route} with another buyer's id, then 404 not_found exactly like a missing id, and nothing changes`, async () => {
        const target = await c.make();
        const baseline = await snapshot();
        const others = await send(c.method, c.path(target), { token: bob.token });
        const upper = await send(c.method, c.path(target.toUpperCase()), { token: bob.token });
        const missing = await send(c.method, c.path(randomUUID()), { token: bob.token });
        assertError(others, 404, 'not_found', 'another buyer\'s id');
        assertError(upper, 404, 'not_found', 'another buyer\'s id in capitals');
        assert.deepEqual(others.body, missing.body, 'the answer must not tell an existing object from a missing one');
        assert.deepEqual(await snapshot(), baseline);
        // The object was there and reachable by its owner: the 404 was authorization, not absence.
        const own = await send(c.method, c.path(target), { token: alice.token });
        assert.equal(own.status, c.ok, JSON.stringify(own.body));
      });
    }

    it('when a buyer or a merchant calls an admin route with an existing or a missing id, then the same 403, and nothing changes; an admin gets 404 for a missing one', async () => {
      const order = await placeOrder(alice.token);
      const letter = await deadLetter();
      const targets: Record<string, { method: string; existing: string; missing: string; ok: number; body?: unknown }> = {
        'POST /v1/admin/orders/{id}/cancel': { method: 'POST', existing: `/v1/admin/orders/${order}/cancel`, missing: `/v1/admin/orders/${randomUUID()}/cancel`, ok: 200, body: { restock: true } },
        'GET /v1/admin/dead-letters/{consumer}/{messageId}': {
          method: 'GET', existing: `/v1/admin/dead-letters/sec-poison/${letter.messageId}`, missing: `/v1/admin/dead-letters/sec-poison/${randomUUID()}`, ok: 200,
        },
        'POST /v1/admin/dead-letters/{consumer}/{messageId}/replay': {
          method: 'POST', existing: `/v1/admin/dead-letters/sec-poison/${letter.messageId}/replay`, missing: `/v1/admin/dead-letters/sec-poison/${randomUUID()}/replay`, ok: 202,
        },
      };
      assert.deepEqual(Object.keys(targets).sort(), Object.entries(ID_ROUTES).filter(([, s]) => s === 'admin').map(([k]) => k).sort());
      const baseline = await snapshot();
      for (const [route, t] of Object.entries(targets)) {
        for (const [who, token] of [['the order\'s own buyer', alice.token], ['another buyer', bob.token], ['a merchant', merchantA]] as const) {
          const existing = await send(t.method, t.existing, { token, ...(t.body ? { body: t.body } : {}) });
          const missing = await send(t.method, t.missing, { token, ...(t.body ? { body: t.body } : {}) });
          assertError(existing, 403, 'forbidden', `${route} by ${who}`);
          assert.deepEqual(existing.body, missing.body, `${route} by ${who}: the role check must not reveal whether the id exists`);
        }
        assertError(await send(t.method, t.missing, { token: admin, ...(t.body ? { body: t.body } : {}) }), 404, 'not_found', `${route} by an admin, missing id`);
      }
      assert.deepEqual(await snapshot(), baseline);
      for (const [route, t] of Object.entries(targets)) {
        const res = await send(t.method, t.existing, { token: admin, ...(t.body ? { body: t.body } : {}) });
        assert.equal(res.status, t.ok, `${route} by an admin: ${JSON.stringify(res.body)}`);
      }
    });

    /** Per shop-scoped sale route: merchant A's scheduled sale, then merchant B tries it. */
    const saleCases: Record<string, { method: string; path: (saleId: string, itemId: string) => string; body?: unknown; ok: number }> = {
      'PATCH /v1/flash-sales/{id}': { method: 'PATCH', path: (id) => `/v1/flash-sales/${id}`, body: { name: 'Taken over' }, ok: 200 },
      'POST /v1/flash-sales/{id}/cancel': { method: 'POST', path: (id) => `/v1/flash-sales/${id}/cancel`, ok: 200 },
      'POST /v1/flash-sales/{id}/items/{itemId}/stock': { method: 'POST', path: (id, item) => `/v1/flash-sales/${id}/items/${item}/stock`, body: { quantity: 5 }, ok: 200 },
    };

    it('when a merchant calls a shop-scoped sale route on another shop\'s sale, then 404 not_found exactly like a missing id, and nothing changes', async () => {
      for (const [route, c] of Object.entries(saleCases)) {
        const sale = await scheduledSaleOfA();
        const item = sale.items[0]!.id;
        const baseline = await snapshot();
        const others = await send(c.method, c.path(sale.id, item), { token: merchantB, ...(c.body ? { body: c.body } : {}) });
        const upper = await send(c.method, c.path(sale.id.toUpperCase(), item), { token: merchantB, ...(c.body ? { body: c.body } : {}) });
        const missing = await send(c.method, c.path(randomUUID(), item), { token: merchantB, ...(c.body ? { body: c.body } : {}) });
        assertError(others, 404, 'not_found', `${route}: another shop's sale`);
        assertError(upper, 404, 'not_found', `${route}: another shop's sale in capitals`);
        assert.deepEqual(others.body, missing.body, 'the answer must not tell an existing sale from a missing one');
        assert.deepEqual(await snapshot(), baseline);
        const own = await send(c.method, c.path(sale.id, item), { token: merchantA, ...(c.body ? { body: c.body } : {}) });
        assert.equal(own.status, c.ok, `${route}: ${JSON.stringify(own.body)}`);
      }
    });

    /** Per shop-scoped route: make an object of merchant A's shop, then let merchant B try it. */
    const shopCases: Record<string, { make: () => Promise<string>; path: (id: string) => string; method: string; body: unknown; ok: number }> = {
      'POST /v1/shop/orders/{id}/shipments': {
        make: () => paidOrder(alice.token), method: 'POST', path: (id) => `/v1/shop/orders/${id}/shipments`, body: { carrier: 'DHL', trackingNumber: 'T-1' }, ok: 201,
      },
      'PATCH /v1/shop/shipments/{id}': { make: () => shippedShipment(alice.token), method: 'PATCH', path: (id) => `/v1/shop/shipments/${id}`, body: { status: 'DELIVERED' }, ok: 200 },
      'POST /v1/shop/orders/{id}/lines/{saleItemId}/cancel': {
        make: () => paidOrder(alice.token), method: 'POST', path: (id) => `/v1/shop/orders/${id}/lines/${orderItem}/cancel`, body: { restock: true }, ok: 200,
      },
    };

    it('when every shop-scoped route is in the table of cases, then none is left untested', () => {
      assert.deepEqual([...Object.keys(shopCases), ...Object.keys(saleCases)].sort(), Object.entries(ID_ROUTES).filter(([, scope]) => scope === 'shop').map(([key]) => key).sort());
    });

    for (const [route, c] of Object.entries(shopCases)) {
      it(`when a merchant calls ${route} on another shop's object, then 404 not_found exactly like a missing id, and nothing changes`, async () => {
        const target = await c.make();
        const baseline = await snapshot();
        const others = await send(c.method, c.path(target), { token: merchantB, body: c.body });
        const upper = await send(c.method, c.path(target.toUpperCase()), { token: merchantB, body: c.body });
        const missing = await send(c.method, c.path(randomUUID()), { token: merchantB, body: c.body });
        assertError(others, 404, 'not_found', 'another shop\'s id');
        assertError(upper, 404, 'not_found', 'another shop\'s id in capitals');
        assert.deepEqual(others.body, missing.body, 'the answer must not tell an existing object from a missing one');
        assert.deepEqual(await snapshot(), baseline);
        const own = await send(c.method, c.path(target), { token: merchantA, body: c.body });
        assert.equal(own.status, c.ok, JSON.stringify(own.body));
      });
    }

    it('when a merchant lists or exports orders, then only its own shop\'s appear', async () => {
      const order = await paidOrder(alice.token);
      const list = async (token: string) => JSON.stringify([(await send('GET', '/v1/shop/orders?limit=100', { token })).body, (await send('GET', '/v1/shop/orders/export', { token })).body]);
      assert.ok((await list(merchantA)).includes(order));
      assert.ok(!(await list(merchantB)).includes(order));
      assert.ok(!(await list(merchantB)).includes(alice.userId));
    });

    it('when anyone reads a flash sale by id, then it is public by design (no owner scope) and a missing id is 404', async () => {
      const { sale } = await h.createSale({ startsInMs: 3600_000 });
      const reads = [await send('GET', `/v1/flash-sales/${sale.id}`), await send('GET', `/v1/flash-sales/${sale.id}`, { token: bob.token }), await send('GET', `/v1/flash-sales/${sale.id}`, { token: merchantB })];
      for (const res of reads) {
        assert.equal(res.status, 200);
        assert.equal(res.body.id, sale.id);
      }
      assertError(await send('GET', `/v1/flash-sales/${randomUUID()}`), 404, 'not_found');
    });

    it('when ids of other users travel in bodies or lists, then they reach nothing: another shop\'s product, another buyer\'s orders, holds and notifications', async () => {
      const aliceOrder = await placeOrder(alice.token);
      const aliceHold = await addHold(alice.token);
      const baseline = await snapshot();
      const inHour = (n: number) => new Date(Date.now() + n * 3600_000).toISOString();
      const stolen = await send('POST', '/v1/flash-sales', {
        token: merchantB, body: { name: 'not mine', startsAt: inHour(1), endsAt: inHour(2), paymentWindowS: 600, holdMode: 'order', items: [{ productId: productA, flashPrice: 1, stock: 5, perUserLimit: 1 }] },
      });
      assertError(stolen, 422, 'unknown_product', 'a sale of another merchant\'s product');
      const checkout = await send('POST', '/v1/checkout', { token: bob.token });
      assertError(checkout, 409, 'cart_empty', 'checkout never takes another buyer\'s holds');
      assert.deepEqual(await snapshot(), baseline);

      const lists = async (token: string) => JSON.stringify([
        (await send('GET', '/v1/orders?limit=100', { token })).body,
        (await send('GET', '/v1/cart', { token })).body,
        (await send('GET', '/v1/notifications?limit=100', { token })).body,
      ]);
      const hers = await lists(alice.token);
      assert.ok(hers.includes(aliceOrder) && hers.includes(aliceHold), 'the owner sees them (so their absence below means something)');
      const his = await lists(bob.token);
      for (const secret of [aliceOrder, aliceHold, alice.userId]) assert.ok(!his.includes(secret), `bob's lists show ${secret}`);
    });
  });

  // ============================================================================================
  describe('API5 function-level authorization', () => {
    const send = counted('API5 function-level authorization', () => h.http);
    const inHours = (n: number) => new Date(Date.now() + n * 3600_000).toISOString();
    /** Bodies that are valid for the schema (validation runs before the role check): each would succeed for the right role. */
    const bodies: Record<string, () => unknown> = {
      createMerchant: () => ({ email: `m-${randomUUID()}@test.local`, password: 'merchant-pw-123', shopName: 'A shop' }),
      createProduct: () => ({ name: 'Product', price: 100, currency: 'USD' }),
      createFlashSale: () => ({ name: 'Sale', startsAt: inHours(1), endsAt: inHours(2), paymentWindowS: 600, holdMode: 'order', items: [{ productId: productA, flashPrice: 50, stock: 5, perUserLimit: 1 }] }),
      createOrder: () => ({ items: [{ saleItemId: orderItem, quantity: 1 }] }),
      addCartItem: () => ({ saleItemId: cartItem, quantity: 1 }),
      adminCancelOrder: () => ({ restock: true }),
      updateFlashSale: () => ({ name: 'Renamed' }),
      addSaleStock: () => ({ quantity: 1 }),
      setMyPhone: () => ({ phone: '+14155552671' }),
      createShipment: () => ({ carrier: 'DHL', trackingNumber: 'T-1' }),
      updateShipment: () => ({ status: 'DELIVERED' }),
      cancelOrderLine: () => ({ restock: true }),
    };
    const fill = (path: string) => path.replace('{consumer}', 'sec-poison').replace(/\{[A-Za-z]+\}/g, () => randomUUID());

    it('when the OpenAPI document is read, then every secured operation has a role here, every other one is in the public list, and the documentation agrees', () => {
      const secured = ops.filter((o) => (o.operation.security ?? []).length > 0).map((o) => o.operation.operationId).sort();
      const open = ops.filter((o) => (o.operation.security ?? []).length === 0).map((o) => o.operation.operationId).sort();
      assert.deepEqual(secured, Object.keys(ROLES).sort(), 'a secured operation has no role in this suite');
      assert.deepEqual(open, [...PUBLIC].sort(), 'an operation without a token requirement is not in the public list');
      for (const o of ops.filter((x) => ROLES[x.operation.operationId])) {
        assert.ok(o.operation.responses['401'] && o.operation.responses['403'], `${o.key} documents 401 and 403`);
        if (o.operation.tags?.includes('admin') || /\(admin\)/.test(o.operation.summary ?? '')) assert.equal(ROLES[o.operation.operationId], 'admin', o.key);
        if (/\(merchant\)/.test(o.operation.summary ?? '')) assert.equal(ROLES[o.operation.operationId], 'merchant', o.key);
      }
    });

    it('when each secured operation is called without a token, then 401; with a token of another role, then 403; and nothing changes', async () => {
      const tokens: Record<Role, () => string> = { buyer: () => h.buyerToken().token, merchant: () => merchantA, admin: () => admin };
      const baseline = await snapshot();
      const failures: string[] = [];
      for (const o of ops.filter((x) => ROLES[x.operation.operationId])) {
        const id = o.operation.operationId;
        const request = (token?: string) => send(o.method, fill(o.path), { ...(token ? { token } : {}), ...(bodies[id] ? { body: bodies[id]() } : {}) });
        const anonymous = await request();
        if (anonymous.status !== 401 || anonymous.body?.error?.code !== 'unauthorized') failures.push(`${o.key} without a token → ${anonymous.status} ${JSON.stringify(anonymous.body)}`);
        for (const role of (['buyer', 'merchant', 'admin'] as const).filter((r) => r !== ROLES[id])) {
          const res = await request(tokens[role]());
          if (res.status !== 403 || res.body?.error?.code !== 'forbidden') failures.push(`${o.key} as ${role} → ${res.status} ${JSON.stringify(res.body)}`);
        }
      }
      assert.deepEqual(failures, []);
      assert.deepEqual(await snapshot(), baseline, 'a refused call changed something');
    });

    it('when each secured operation is called with its own role, then it gets past authorization (so the 401/403 above were about the caller)', async () => {
      const tokens: Record<Role, () => string> = { buyer: () => h.buyerToken().token, merchant: () => merchantA, admin: () => admin };
      for (const o of ops.filter((x) => ROLES[x.operation.operationId])) {
        const id = o.operation.operationId;
        const res = await send(o.method, fill(o.path), { token: tokens[ROLES[id]!](), ...(bodies[id] ? { body: bodies[id]() } : {}) });
        assert.ok(![401, 403].includes(res.status) && res.status < 500, `${o.key} as ${ROLES[id]} → ${res.status} ${JSON.stringify(res.body)}`);
      }
    });

    it('when adminCancelOrder is called without a body (documented as optional), then 401 without a token and 200 for an admin', async () => {
      const order = await placeOrder(h.buyerToken().token);
      assertError(await send('POST', `/v1/admin/orders/${order}/cancel`), 401, 'unauthorized');
      assert.equal((await send('POST', `/v1/admin/orders/${order}/cancel`, { token: admin })).status, 200);
    });

    it('when a merchant token names a user without a shop, then 403 on shop operations and nothing is created', async () => {
      const shopless = h.system.tokens.issue({ userId: randomUUID(), role: 'merchant' });
      const baseline = await snapshot();
      assertError(await send('POST', '/v1/products', { token: shopless, body: bodies.createProduct!() }), 403, 'forbidden');
      assertError(await send('POST', '/v1/flash-sales', { token: shopless, body: bodies.createFlashSale!() }), 403, 'forbidden');
      assert.deepEqual(await snapshot(), baseline);
    });
  });

  // ============================================================================================
  describe('API3 mass assignment', () => {
    const send = counted('API3 mass assignment', () => h.http);
    type Key = string | number;
    interface Mutation {
      /** Builds what the valid request acts on. */
      prepare: () => Promise<{ token?: string; path: string; body?: Record<string, unknown> }>;
      /** Where an `items` array holds objects: forged fields are also put in its first element. */
      lines?: boolean;
      ok: number;
      check: (res: HttpResponse, ctx: { token?: string; path: string; body?: Record<string, unknown> }) => void | Promise<void>;
    }
    const fresh = () => h.buyerToken();
    const mutations: Record<string, Mutation> = {
      register: {
        prepare: async () => ({ path: '/v1/auth/register', body: { email: `mass-${randomUUID()}@test.local`, password: 'mass-password-1' } }),
        ok: 201, check: (res) => assert.equal(res.body.role, 'buyer'),
      },
      login: {
        prepare: async () => {
          const email = `login-${randomUUID()}@test.local`;
          await h.system.accounts.register(email, 'login-password-1');
          return { path: '/v1/auth/login', body: { email, password: 'login-password-1' } };
        },
        ok: 200, check: (res) => {
          assert.equal(res.body.user.role, 'buyer');
          assert.equal(claimsOf(res.body.token).role, 'buyer');
        },
      },
      createMerchant: {
        prepare: async () => ({ token: admin, path: '/v1/admin/merchants', body: { email: `cm-${randomUUID()}@test.local`, password: 'merchant-pw-123', shopName: 'Mass shop' } }),
        ok: 201, check: (res) => {
          assert.equal(res.body.user.role, 'merchant');
          assert.equal(res.body.shop.ownerId, res.body.user.id);
        },
      },
      createProduct: {
        prepare: async () => ({ token: merchantA, path: '/v1/products', body: { name: 'Mass product', price: 1234, currency: 'USD' } }),
        ok: 201, check: (res) => assert.equal(res.body.shopId, shopA),
      },
      createFlashSale: {
        prepare: async () => ({
          token: merchantA, path: '/v1/flash-sales', body: {
            name: 'Mass sale', startsAt: new Date(Date.now() + 3600_000).toISOString(), endsAt: new Date(Date.now() + 7200_000).toISOString(),
            paymentWindowS: 600, holdMode: 'order', items: [{ productId: productA, flashPrice: 700, stock: 3, perUserLimit: 1 }],
          },
        }),
        lines: true, ok: 201, check: (res) => {
          assert.equal(res.body.shopId, shopA);
          assert.equal(res.body.status, 'scheduled');
          assert.equal(res.body.items[0].remaining, 3);
        },
      },
      createOrder: {
        prepare: async () => ({ token: fresh().token, path: '/v1/orders', body: { items: [{ saleItemId: orderItem, quantity: 1 }] } }),
        lines: true, ok: 201, check: (res, ctx) => {
          assert.equal(res.body.userId, claimsOf(ctx.token!).sub);
          assert.equal(res.body.status, 'PENDING_PAYMENT');
          assert.equal(res.body.totalAmount, 5000);
        },
      },
      cancelOrder: {
        prepare: async () => {
          const buyer = fresh();
          return { token: buyer.token, path: `/v1/orders/${await placeOrder(buyer.token)}/cancel` };
        },
        ok: 200, check: (res) => assert.equal(res.body.closedReason, 'buyer_cancelled'),
      },
      payOrder: {
        prepare: async () => {
          const buyer = fresh();
          return { token: buyer.token, path: `/v1/orders/${await placeOrder(buyer.token)}/payment` };
        },
        ok: 201, check: (res) => assert.equal(res.body.amount, 5000),
      },
      addCartItem: {
        prepare: async () => ({ token: fresh().token, path: '/v1/cart/items', body: { saleItemId: cartItem, quantity: 1 } }),
        ok: 201, check: (res) => assert.equal(res.body.unitPrice, 5000),
      },
      removeCartItem: {
        prepare: async () => {
          const buyer = fresh();
          return { token: buyer.token, path: `/v1/cart/items/${await addHold(buyer.token)}` };
        },
        ok: 204, check: () => {},
      },
      checkout: {
        prepare: async () => {
          const buyer = fresh();
          await addHold(buyer.token);
          return { token: buyer.token, path: '/v1/checkout' };
        },
        ok: 201, check: (res, ctx) => {
          assert.equal(res.body.orders[0].userId, claimsOf(ctx.token!).sub);
          assert.equal(res.body.orders[0].totalAmount, 5000);
        },
      },
      adminCancelOrder: {
        prepare: async () => ({ token: admin, path: `/v1/admin/orders/${await placeOrder(fresh().token)}/cancel`, body: { restock: true } }),
        ok: 200, check: (res) => assert.equal(res.body.closedReason, 'admin_cancelled'),
      },
      setMyPhone: {
        prepare: async () => {
          const user = await h.system.accounts.register(`phone-${randomUUID()}@test.local`, 'phone-password-1');
          return { token: h.system.tokens.issue({ userId: user.id, role: 'buyer' }), path: '/v1/me/phone', body: { phone: '+1 415 555 2671' } };
        },
        ok: 200, check: (res) => assert.deepEqual(res.body, { phone: '+14155552671' }),
      },
      deleteMyPhone: {
        prepare: async () => {
          const user = await h.system.accounts.register(`phone-${randomUUID()}@test.local`, 'phone-password-1');
          await h.system.accounts.setPhone(user.id, '+14155552672');
          return { token: h.system.tokens.issue({ userId: user.id, role: 'buyer' }), path: '/v1/me/phone' };
        },
        ok: 204, check: () => {},
      },
      updateFlashSale: {
        prepare: async () => ({
          token: merchantA, path: `/v1/flash-sales/${(await scheduledSaleOfA()).id}`,
          body: { name: 'Mass edit', items: [{ productId: productA, flashPrice: 700, stock: 4, perUserLimit: 1 }] },
        }),
        lines: true, ok: 200, check: (res) => {
          assert.equal(res.body.shopId, shopA);
          assert.equal(res.body.status, 'scheduled');
          assert.equal(res.body.items[0].remaining, 4);
        },
      },
      cancelFlashSale: {
        prepare: async () => ({ token: merchantA, path: `/v1/flash-sales/${(await scheduledSaleOfA()).id}/cancel` }),
        ok: 200, check: (res) => assert.equal(res.body.status, 'cancelled'),
      },
      addSaleStock: {
        prepare: async () => {
          const sale = await scheduledSaleOfA();
          return { token: merchantA, path: `/v1/flash-sales/${sale.id}/items/${sale.items[0]!.id}/stock`, body: { quantity: 2 } };
        },
        ok: 200, check: (res) => {
          assert.equal(res.body.items[0].stock, 5);
          assert.equal(res.body.items[0].remaining, 5);
        },
      },
      createShipment: {
        prepare: async () => ({ token: merchantA, path: `/v1/shop/orders/${await paidOrder(fresh().token)}/shipments`, body: { carrier: 'DHL', trackingNumber: 'MASS-1' } }),
        ok: 201, check: (res, ctx) => {
          assert.equal(res.body.status, 'SHIPPED');
          assert.ok(ctx.path.includes(res.body.orderId));
        },
      },
      updateShipment: {
        prepare: async () => ({ token: merchantA, path: `/v1/shop/shipments/${await shippedShipment(fresh().token)}`, body: { status: 'DELIVERED' } }),
        ok: 200, check: (res) => assert.equal(res.body.status, 'DELIVERED'),
      },
      cancelOrderLine: {
        prepare: async () => ({ token: merchantA, path: `/v1/shop/orders/${await paidOrder(fresh().token)}/lines/${orderItem}/cancel`, body: { restock: true } }),
        ok: 200, check: (res) => {
          assert.equal(res.body.status, 'CANCELLED');
          assert.equal(res.body.closedReason, 'merchant_cancelled');
          assert.equal(res.body.totalAmount, 5000);
        },
      },
      replayDeadLetter: {
        prepare: async () => ({ token: admin, path: `/v1/admin/dead-letters/sec-poison/${(await deadLetter()).messageId}/replay` }),
        ok: 202, check: (res) => assert.deepEqual(res.body, { replayed: true }),
      },
    };

    const mutating = () => ops.filter((o) => ['POST', 'PUT', 'PATCH', 'DELETE'].includes(o.method) && o.operation.operationId !== 'paymentWebhook');

    /** Every object schema under a request body refuses unknown fields. */
    function openObjects(schema: Schema, at: string, found: string[]): string[] {
      const s = schema.$ref ? doc.components!.schemas![schema.$ref.replace('#/components/schemas/', '')]! : schema;
      if (s.type === 'object' || s.properties) {
        if (s.additionalProperties !== false) found.push(at || '(body)');
        for (const [name, child] of Object.entries(s.properties ?? {})) openObjects(child, `${at}.${name}`, found);
      }
      if (s.items) openObjects(s.items, `${at}[]`, found);
      for (const child of [...(s.anyOf ?? []), ...(s.oneOf ?? []), ...(s.allOf ?? [])]) openObjects(child, at, found);
      return found;
    }

    it('when the OpenAPI document is read, then every mutating operation is covered here and every object in its body refuses unknown fields', () => {
      assert.deepEqual(mutating().map((o) => o.operation.operationId).sort(), Object.keys(mutations).sort(), 'a mutating operation is not covered by the mass-assignment tests');
      const open = mutating().flatMap((o) => Object.values(o.operation.requestBody?.content ?? {}).flatMap((c) => openObjects(c.schema, '', []).map((at) => `${o.key} ${at}`)));
      assert.deepEqual(open, [], 'request bodies that accept unknown fields');
      // The webhook is the one exception: its body is the provider's signed raw text, not ours to shape.
      const webhook = byId('paymentWebhook').operation.requestBody!.content;
      assert.deepEqual(Object.values(webhook).map((c) => c.schema.type), ['string']);
    });

    it('when someone registers with role admin (or any server-set field), then 422 and no account exists; the plain registration is a buyer', async () => {
      const email = `would-be-admin-${randomUUID()}@test.local`;
      for (const extra of [{ role: 'admin' }, { role: 'merchant' }, { id: ZERO_UUID }, { passwordHash: 'scrypt$x$y' }]) {
        assertError(await send('POST', '/v1/auth/register', { body: { email, password: 'admin-wannabe-1', ...extra } }), 422, 'validation_failed', JSON.stringify(extra));
      }
      assert.equal(await scalar(h.system, 'select count(*) from users where email = $1', [email]), 0);
      const ok = await send('POST', '/v1/auth/register', { body: { email, password: 'admin-wannabe-1' } });
      assert.equal(ok.status, 201);
      assert.equal(ok.body.role, 'buyer');
      const login = await send('POST', '/v1/auth/login', { body: { email, password: 'admin-wannabe-1' } });
      assert.equal(claimsOf(login.body.token).role, 'buyer');
      assertError(await send('GET', '/v1/admin/audit', { token: login.body.token }), 403, 'forbidden');
    });

    for (const [operationId, m] of Object.entries(mutations)) {
      it(`when ${operationId} gets server-set fields (price, status, stock, owner, role, userId, id, createdAt, …), then 422 each and nothing changes; the clean request then succeeds with server-set values`, async () => {
        const ctx = await m.prepare();
        const o = byId(operationId);
        const schema = Object.values(o.operation.requestBody?.content ?? {})[0]?.schema;
        const legit = new Set(Object.keys(schema?.properties ?? {}));
        const lineLegit = new Set(Object.keys(schema?.properties?.items?.items?.properties ?? {}));
        const attempts: Array<{ name: string; body: unknown }> = [];
        const withField = (at: Key[], value: unknown) => {
          const body = structuredClone(ctx.body ?? {}) as Record<Key, any>;
          let node = body;
          for (const k of at.slice(0, -1)) node = node[k];
          node[at.at(-1)!] = value;
          return body;
        };
        for (const [field, value] of Object.entries(FORGED)) if (!legit.has(field)) attempts.push({ name: field, body: withField([field], value) });
        if (m.lines) for (const [field, value] of Object.entries(FORGED_LINE)) if (!lineLegit.has(field)) attempts.push({ name: `items[0].${field}`, body: withField(['items', 0, field], value) });
        attempts.push({ name: 'all at once', body: { ...(ctx.body ?? {}), ...Object.fromEntries(Object.entries(FORGED).filter(([f]) => !legit.has(f))) } });

        const baseline = await snapshot();
        const failures: string[] = [];
        for (const attempt of attempts) {
          const res = await send(o.method, ctx.path, { ...(ctx.token ? { token: ctx.token } : {}), body: attempt.body });
          if (res.status !== 422 || res.body?.error?.code !== 'validation_failed') failures.push(`${attempt.name} → ${res.status} ${JSON.stringify(res.body).slice(0, 200)}`);
        }
        assert.deepEqual(failures, [], `${operationId} accepted forged fields`);
        assert.deepEqual(await snapshot(), baseline, `${operationId}: a refused request changed something`);

        const res = await send(o.method, ctx.path, { ...(ctx.token ? { token: ctx.token } : {}), ...(ctx.body ? { body: ctx.body } : {}) });
        assert.equal(res.status, m.ok, JSON.stringify(res.body));
        await m.check(res, ctx);
        if (res.body && typeof res.body === 'object') {
          const text = JSON.stringify(res.body);
          assert.ok(!text.includes(ZERO_UUID) && !text.includes('2000-01-01') && !text.includes('2999-01-01'), `${operationId}: a forged value leaked into ${text}`);
        }
      });
    }
  });

  // ============================================================================================
  describe('bearer tokens', () => {
    const send = counted('tokens', () => h.http);
    const secret = () => h.system.config.JWT_SECRET;
    const claims = (extra: Record<string, unknown> = {}) => ({ sub: alice.userId, role: 'buyer', iat: nowS(), exp: nowS() + 3600, ...extra });
    const HS256 = { alg: 'HS256', typ: 'JWT' };
    const refused = async (label: string, headers: Record<string, string>, path = '/v1/orders') => {
      assertError(await send('GET', path, { headers }), 401, 'unauthorized', label);
    };
    const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

    it('when a hand-built token is signed correctly, then it is accepted (the control: the refusals below are about the defect)', async () => {
      assert.equal((await send('GET', '/v1/orders', { headers: bearer(hmacJwt(HS256, claims(), secret())) })).status, 200);
      assert.ok([200, 409].includes((await send('GET', '/v1/admin/audit', { headers: bearer(hmacJwt(HS256, claims({ role: 'admin' }), secret())) })).status), 'an admin claim, correctly signed, reaches the audit');
    });

    it('when the token has expired, or is not valid yet, then 401 unauthorized', async () => {
      await refused('expired an hour ago', bearer(hmacJwt(HS256, claims({ iat: nowS() - 7200, exp: nowS() - 3600 }), secret())));
      await refused('expired a second ago', bearer(hmacJwt(HS256, claims({ iat: nowS() - 100, exp: nowS() - 1 }), secret())));
      await refused('not valid before an hour from now', bearer(hmacJwt(HS256, claims({ nbf: nowS() + 3600 }), secret())));
    });

    it('when the signature is wrong (another secret, an empty secret, bytes flipped, none at all), then 401', async () => {
      const genuine = hmacJwt(HS256, claims(), secret());
      const [head, body, sig] = genuine.split('.') as [string, string, string];
      await refused('signed with another secret', bearer(hmacJwt(HS256, claims(), 'another-secret-of-some-length')));
      await refused('signed with an empty secret', bearer(hmacJwt(HS256, claims(), '')));
      await refused('signature flipped', bearer(`${head}.${body}.${sig.startsWith('A') ? 'B' : 'A'}${sig.slice(1)}`));
      await refused('signature removed', bearer(`${head}.${body}.`));
      await refused('signature segment missing', bearer(`${head}.${body}`));
    });

    it('when the token says alg none (any spelling), then 401 even for an admin claim', async () => {
      for (const alg of ['none', 'None', 'NONE', 'nOnE']) {
        const unsigned = `${b64url({ alg, typ: 'JWT' })}.${b64url(claims({ role: 'admin' }))}.`;
        await refused(`alg ${alg}`, bearer(unsigned), '/v1/admin/audit');
        await refused(`alg ${alg} without the trailing dot`, bearer(unsigned.slice(0, -1)), '/v1/admin/audit');
      }
    });

    it('when the claims are tampered with and not re-signed (role raised, subject swapped), then 401', async () => {
      const genuine = h.system.tokens.issue({ userId: bob.userId, role: 'buyer' });
      assert.equal((await send('GET', '/v1/orders', { headers: bearer(genuine) })).status, 200);
      const [head, , sig] = genuine.split('.') as [string, string, string];
      const original = claimsOf(genuine);
      await refused('role raised to admin', bearer(`${head}.${b64url({ ...original, role: 'admin' })}.${sig}`), '/v1/admin/audit');
      await refused('role raised to merchant', bearer(`${head}.${b64url({ ...original, role: 'merchant' })}.${sig}`), '/v1/orders');
      await refused('subject swapped to another buyer', bearer(`${head}.${b64url({ ...original, sub: alice.userId })}.${sig}`));
      await refused('expiry pushed out', bearer(`${head}.${b64url({ ...original, exp: nowS() + 10 * 365 * 86400 })}.${sig}`));
    });

    it('when the token uses another algorithm (HS384, HS512 with our secret; RS256, ES256 with the attacker\'s key), then 401', async () => {
      await refused('HS384', bearer(hmacJwt({ alg: 'HS384', typ: 'JWT' }, claims(), secret(), 'sha384')));
      await refused('HS512', bearer(hmacJwt({ alg: 'HS512', typ: 'JWT' }, claims(), secret(), 'sha512')));
      const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
      const rsInput = `${b64url({ alg: 'RS256', typ: 'JWT' })}.${b64url(claims({ role: 'admin' }))}`;
      await refused('RS256', bearer(`${rsInput}.${signWithKey('sha256', Buffer.from(rsInput), rsa.privateKey).toString('base64url')}`), '/v1/admin/audit');
      const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const esInput = `${b64url({ alg: 'ES256', typ: 'JWT' })}.${b64url(claims({ role: 'admin' }))}`;
      await refused('ES256', bearer(`${esInput}.${signWithKey('sha256', Buffer.from(esInput), { key: ec.privateKey, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`), '/v1/admin/audit');
    });

    it('when correctly signed claims are unusable (unknown role, no subject, a numeric subject), then 401', async () => {
      await refused('role superadmin', bearer(hmacJwt(HS256, claims({ role: 'superadmin' }), secret())), '/v1/admin/audit');
      await refused('no role', bearer(hmacJwt(HS256, { sub: alice.userId, exp: nowS() + 3600 }, secret())));
      await refused('no subject', bearer(hmacJwt(HS256, { role: 'buyer', exp: nowS() + 3600 }, secret())));
      await refused('numeric subject', bearer(hmacJwt(HS256, claims({ sub: 42 }), secret())));
    });

    it('when the token is garbage, then 401', async () => {
      for (const garbage of ['garbage', 'a.b.c', '...', 'null', '{}', `${'x'.repeat(4000)}.${'y'.repeat(4000)}.${'z'.repeat(100)}`, b64url(claims()), '\u00e9\u00e9.\u00e9.\u00e9']) {
        await refused(`garbage ${garbage.slice(0, 20)}`, { authorization: `Bearer ${garbage}` });
      }
    });

    it('when the Bearer scheme is missing or the token is elsewhere (raw header, Basic, Token, empty, query string, cookie), then 401', async () => {
      const good = h.system.tokens.issue({ userId: alice.userId, role: 'buyer' });
      await refused('no Authorization header', {});
      await refused('raw token', { authorization: good });
      await refused('Basic', { authorization: `Basic ${Buffer.from(`${alice.userId}:x`).toString('base64')}` });
      await refused('Token scheme', { authorization: `Token ${good}` });
      await refused('Bearer with nothing', { authorization: 'Bearer ' });
      await refused('Bearer alone', { authorization: 'Bearer' });
      assertError(await send('GET', `/v1/orders?access_token=${good}`), 422, 'validation_failed', 'query-string token');
      await refused('cookie', { cookie: `token=${good}; authorization=Bearer%20${good}` });
    });
  });

  // ============================================================================================
  describe('payment webhooks', () => {
    const send = counted('webhooks', () => h.http);
    let orderId: string;
    let intentId: string;
    let owner: { token: string; userId: string };
    const whSecret = () => h.system.config.PSP_WEBHOOK_SECRET;
    const tolerance = () => h.system.config.PSP_WEBHOOK_TOLERANCE_S;
    const post = (body: string, signature?: string) =>
      send('POST', '/v1/payments/webhook', { rawBody: body, headers: { 'content-type': 'application/json', ...(signature ? { 'stripe-signature': signature } : {}) } });
    const event = (id: string) => JSON.stringify({
      id, object: 'event', type: 'payment_intent.succeeded', created: nowS(),
      data: { object: { id: intentId, object: 'payment_intent', amount: 5000, currency: 'usd', status: 'succeeded', metadata: { order_id: orderId }, last_payment_error: null } },
    });
    const captures = () => scalar(h.system, `select count(*) from payments where order_id = $1 and status = 'succeeded'`, [orderId]);
    const psp = async (path: string, init: RequestInit = {}) => {
      counts.webhooks = (counts.webhooks ?? 0) + 1;
      return fetch(`${h.pspUrl}${path}`, { redirect: 'manual', ...init, headers: { authorization: `Bearer ${h.system.config.PSP_API_KEY}`, ...init.headers } });
    };

    before(async () => {
      owner = h.buyerToken();
      orderId = await placeOrder(owner.token);
      const payment = await send('POST', `/v1/orders/${orderId}/payment`, { token: owner.token });
      assert.equal(payment.status, 201);
      intentId = payment.body.providerPaymentId;
    });

    it('when the signature is forged (wrong secret, zeros, over other bytes, missing, malformed), then 400 invalid_signature and nothing changes', async () => {
      const body = event(`evt_forged_${randomUUID()}`);
      const baseline = await snapshot();
      const t = nowS();
      for (const [label, res] of [
        ['signed with another secret', await post(body, signatureHeader(body, t, ['whsec_an_attackers_guess_0123']))],
        ['all-zero signature', await post(body, `t=${t},v1=${'0'.repeat(64)}`)],
        ['signature over other bytes', await post(body.replace('"amount":5000', '"amount":1'), signatureHeader(body, t, [whSecret()]))],
        ['no signature header', await post(body)],
        ['malformed header', await post(body, 'v1=abc,t=now')],
      ] as const) assertError(res, 400, 'invalid_signature', label);
      assert.deepEqual(await snapshot(), baseline);
      assert.equal(await captures(), 0);
    });

    it('when a correctly signed event is older (or newer) than the tolerance window, then 400 invalid_signature and nothing changes', async () => {
      const body = event(`evt_stale_${randomUUID()}`);
      const baseline = await snapshot();
      assertError(await post(body, signatureHeader(body, nowS() - tolerance() - 5, [whSecret()])), 400, 'invalid_signature', 'stale');
      assertError(await post(body, signatureHeader(body, nowS() + tolerance() + 5, [whSecret()])), 400, 'invalid_signature', 'from the future');
      assert.deepEqual(await snapshot(), baseline);
      assert.equal(await captures(), 0);
    });

    it('when a genuine event is replayed (by us inside the window, by the provider, or outside the window), then it has no second effect', async () => {
      const paid = await psp(`/pay/${intentId}/pay`, { method: 'POST' });
      assert.equal(paid.status, 303);
      await until(async () => {
        await h.system.broker.drain();
        return (await h.http.request('GET', `/v1/orders/${orderId}`, { token: owner.token })).body.status === 'PAID';
      }, 'the genuine webhook');
      const listed = await (await psp(`/_sim/events?payment_intent=${intentId}&type=payment_intent.succeeded`)).json() as { data: Array<{ id: string; event: unknown }> };
      assert.equal(listed.data.length, 1);
      const genuine = listed.data[0]!;
      const body = JSON.stringify(genuine.event);
      const effects = async () => ({
        captures: await captures(),
        events: await scalar(h.system, 'select count(*) from webhook_events where event_id = $1', [genuine.id]),
        succeeded: await scalar(h.system, `select count(*) from outbox where topic = 'payment.succeeded' and payload->>'orderId' = $1`, [orderId]),
        paid: await scalar(h.system, `select count(*) from outbox where topic = 'order.paid' and payload->>'orderId' = $1`, [orderId]),
      });
      const once = { captures: 1, events: 1, succeeded: 1, paid: 1 };
      assert.deepEqual(await effects(), once);

      const replays = await Promise.all([1, 2, 3].map(() => post(body, signatureHeader(body, nowS(), [whSecret()]))));
      for (const res of replays) assert.deepEqual([res.status, res.body], [200, { received: true, duplicate: true }]);
      assertError(await post(body, signatureHeader(body, nowS() - tolerance() - 1, [whSecret()])), 400, 'invalid_signature', 'replay outside the window');

      await psp(`/_sim/events/${genuine.id}/resend`, { method: 'POST' });
      await until(async () => {
        const state = await (await psp(`/_sim/events?payment_intent=${intentId}&type=payment_intent.succeeded`)).json() as { data: Array<{ delivered: number }> };
        return state.data[0]!.delivered >= 2;
      }, 'the provider\'s redelivery');
      await h.system.broker.drain();
      assert.deepEqual(await effects(), once);
      assert.equal((await h.http.request('GET', `/v1/orders/${orderId}`, { token: owner.token })).body.status, 'PAID');
    });
  });

  // ============================================================================================
  describe('Idempotency-Key', () => {
    const send = counted('idempotency', () => h.http);

    it('when a key is reused with a different body (or path), then 422 idempotency_key_reused and nothing changes, on atomic and stored routes', async () => {
      const buyer = h.buyerToken();
      const key = { 'idempotency-key': `sec-${randomUUID()}` };
      assert.equal((await send('POST', '/v1/orders', { token: buyer.token, headers: key, body: { items: [{ saleItemId: orderItem, quantity: 1 }] } })).status, 201);
      assert.equal((await send('POST', '/v1/products', { token: merchantA, headers: key, body: { name: 'Idem', price: 100, currency: 'USD' } })).status, 201);
      const first = await placeOrder(buyer.token);
      assert.equal((await send('POST', `/v1/orders/${first}/cancel`, { token: buyer.token, headers: { 'idempotency-key': 'cancel-key' } })).status, 200);
      const second = await placeOrder(buyer.token);
      const baseline = await snapshot();
      assertError(await send('POST', '/v1/orders', { token: buyer.token, headers: key, body: { items: [{ saleItemId: orderItem, quantity: 2 }] } }), 422, 'idempotency_key_reused', 'order');
      assertError(await send('POST', '/v1/products', { token: merchantA, headers: key, body: { name: 'Idem', price: 1, currency: 'USD' } }), 422, 'idempotency_key_reused', 'product');
      assertError(await send('POST', `/v1/orders/${second}/cancel`, { token: buyer.token, headers: { 'idempotency-key': 'cancel-key' } }), 422, 'idempotency_key_reused', 'cancel of another order');
      assert.deepEqual(await snapshot(), baseline);
    });

    it('when duplicates with one key arrive concurrently, then one effect (one order, one unit, one product) and every answer is the same', async () => {
      const buyer = h.buyerToken();
      const stockBefore = (await h.system.inventory.available(orderItem))!;
      const orders = await runConcurrently(10, 10, () =>
        send('POST', '/v1/orders', { token: buyer.token, headers: { 'idempotency-key': 'burst' }, body: { items: [{ saleItemId: orderItem, quantity: 1 }] } }));
      assert.deepEqual(countBy(orders, (r) => String(r.status)), { 201: 10 });
      assert.equal(new Set(orders.map((r) => r.body.id)).size, 1);
      assert.equal(await scalar(h.system, 'select count(*) from orders where user_id = $1', [buyer.userId]), 1);
      assert.equal(await h.system.inventory.available(orderItem), stockBefore - 1);

      const name = `burst-${randomUUID()}`;
      const products = await runConcurrently(10, 10, () =>
        send('POST', '/v1/products', { token: merchantA, headers: { 'idempotency-key': name }, body: { name, price: 100, currency: 'USD' } }));
      assert.deepEqual(countBy(products, (r) => String(r.status)), { 201: 10 });
      assert.equal(new Set(products.map((r) => r.body.id)).size, 1);
      assert.equal(await scalar(h.system, 'select count(*) from products where name = $1', [name]), 1);
    });

    it('when another buyer sends the same key and body, then it gets its own order, never the first buyer\'s stored answer', async () => {
      const key = { 'idempotency-key': `shared-${randomUUID()}` };
      const body = { items: [{ saleItemId: orderItem, quantity: 1 }] };
      const hers = await send('POST', '/v1/orders', { token: alice.token, headers: key, body });
      const his = await send('POST', '/v1/orders', { token: bob.token, headers: key, body });
      assert.equal(his.status, 201);
      assert.notEqual(his.body.id, hers.body.id);
      assert.equal(his.body.userId, bob.userId);
      assert.equal(his.headers['idempotent-replayed'], undefined);
    });
  });

  // ============================================================================================
  describe('API4 resource consumption', () => {
    const send = counted('API4 resource consumption', () => h.http);

    it('when a body is over BODY_LIMIT_BYTES on any mutating route, then 413 payload_too_large and nothing changes; under it, the body is read', async () => {
      const limit = h.system.config.BODY_LIMIT_BYTES;
      const tokens: Record<Role, string> = { buyer: alice.token, merchant: merchantA, admin };
      const big = JSON.stringify({ pad: 'x'.repeat(limit + 1) });
      const baseline = await snapshot();
      const mutating = ops.filter((o) => ['POST', 'PUT', 'PATCH', 'DELETE'].includes(o.method) && o.operation.operationId !== 'paymentWebhook');
      for (const o of mutating) {
        const role = ROLES[o.operation.operationId];
        const path = o.path.replace('{consumer}', 'sec-poison').replace(/\{[A-Za-z]+\}/g, () => randomUUID());
        const res = await send(o.method, path, { ...(role ? { token: tokens[role] } : {}), rawBody: big, headers: { 'content-type': 'application/json' } });
        assertError(res, 413, 'payload_too_large', o.key);
      }
      // The webhook keeps raw text with its own, larger limit (256 KiB).
      assertError(await send('POST', '/v1/payments/webhook', { rawBody: 'x'.repeat(256 * 1024 + 1), headers: { 'content-type': 'application/json' } }), 413, 'payload_too_large', 'webhook');
      assertError(await send('POST', '/v1/payments/webhook', { rawBody: 'x'.repeat(limit + 1), headers: { 'content-type': 'application/json' } }), 400, 'invalid_signature', 'webhook under its limit');
      assert.deepEqual(await snapshot(), baseline);
      const justUnder = JSON.stringify({ email: 'x@test.local', password: 'p'.repeat(8), pad: 'x'.repeat(limit - 200) });
      assertError(await send('POST', '/v1/auth/register', { rawBody: justUnder, headers: { 'content-type': 'application/json' } }), 422, 'validation_failed', 'under the limit');
    });

    it('when a list asks for more than its cap (limit, offset), then 422 validation_failed; at the cap, 200 — and the caps are the documented ones', async () => {
      const tokens: Record<Role, string> = { buyer: alice.token, merchant: merchantA, admin };
      const lists = ops.filter((o) => o.method === 'GET' && o.operation.parameters?.some((p) => p.in === 'query' && p.name === 'limit'));
      const caps = Object.fromEntries(lists.map((o) => [o.operation.operationId, o.operation.parameters!.find((p) => p.name === 'limit')!.schema.maximum]));
      assert.deepEqual(caps, LIMIT_CAPS, 'every paginated list has a documented cap');
      for (const o of lists) {
        const role = ROLES[o.operation.operationId];
        const auth = role ? { token: tokens[role] } : {};
        const cap = LIMIT_CAPS[o.operation.operationId]!;
        assert.equal((await send('GET', `${o.path}?limit=${cap}`, auth)).status, 200, `${o.key} at the cap`);
        for (const limit of [cap + 1, 1_000_000_000, 0, -1, 'all']) assertError(await send('GET', `${o.path}?limit=${limit}`, auth), 422, 'validation_failed', `${o.key} limit=${limit}`);
        if (o.operation.parameters!.some((p) => p.name === 'offset')) {
          assertError(await send('GET', `${o.path}?offset=10001`, auth), 422, 'validation_failed', `${o.key} offset over its cap`);
        }
      }
    });

    describe('rate limits', () => {
      const IP_MAX = 10;
      let r: Harness;
      /** Requests this harness has seen: all of them count against the one per-IP budget. */
      let spent = 0;
      const countedR = counted('API4 resource consumption', () => r.http);
      const sendR: typeof countedR = (method, path, opts) => {
        spent++;
        return countedR(method, path, opts);
      };
      before(async () => {
        r = await startHarness({ config: { RATE_LIMIT_USER_MAX: 3, RATE_LIMIT_USER_WINDOW_MS: 60_000, RATE_LIMIT_IP_MAX: IP_MAX, RATE_LIMIT_IP_WINDOW_MS: 60_000 } });
      });
      after(() => r?.close());

      const limited = (res: HttpResponse, label: string) => {
        assertError(res, 429, 'rate_limited', label);
        const retry = Number(res.headers['retry-after']);
        assert.ok(Number.isInteger(retry) && retry >= 1 && retry <= 60, `${label}: Retry-After ${res.headers['retry-after']}`);
      };

      it('when one user exceeds the per-user limit, then 429 rate_limited with Retry-After, and another user is not affected', async () => {
        const carol = r.buyerToken();
        const statuses: number[] = [];
        let last!: HttpResponse;
        for (let i = 0; i < 4; i++) {
          last = await sendR('GET', '/v1/orders', { token: carol.token });
          statuses.push(last.status);
        }
        assert.deepEqual(statuses, [200, 200, 200, 429]);
        limited(last, 'per user');
        assert.equal((await sendR('GET', '/v1/orders', { token: r.buyerToken().token })).status, 200, 'another user has its own budget');
      });

      it('when one address exceeds the per-IP limit, then 429 with Retry-After on public routes too, and a forged X-Forwarded-For does not reset it', async () => {
        const left = IP_MAX - spent;
        assert.ok(left > 0, 'some of the per-IP budget is left');
        const statuses: number[] = [];
        for (let i = 0; i < left + 1; i++) statuses.push((await sendR('GET', '/v1/flash-sales')).status);
        assert.deepEqual(statuses, [...Array<number>(left).fill(200), 429]);
        limited(await sendR('GET', '/v1/flash-sales'), 'per IP');
        limited(await sendR('POST', '/v1/auth/login', { body: { email: 'a@test.local', password: 'whatever-pw' } }), 'per IP on login');
        for (const forwarded of ['10.0.0.1', '203.0.113.7, 10.0.0.2']) limited(await sendR('GET', '/v1/flash-sales', { headers: { 'x-forwarded-for': forwarded } }), `X-Forwarded-For ${forwarded}`);
        // Exempt by design: the provider's webhooks and the probes.
        assert.equal((await sendR('POST', '/v1/payments/webhook', { rawBody: '{}', headers: { 'content-type': 'application/json' } })).status, 400);
        assert.equal((await sendR('GET', '/health')).status, 200);
      });
    });
  });

  // ============================================================================================
  describe('secrets', () => {
    const SECRET_VARS = ['JWT_SECRET', 'PSP_API_KEY', 'PSP_WEBHOOK_SECRET', 'DATABASE_URL', 'REDIS_URL', 'AMQP_URL', 'SMTP_URL'];
    const ENV_READ = /\bprocess\s*\.\s*env\b|\bprocess\s*\[\s*['"`]env['"`]\s*\]|\benv\s*\}\s*=\s*process\b|from\s+['"](?:node:)?process['"]/;

    async function sourceFiles(dir: string): Promise<string[]> {
      const entries = await readdir(dir, { withFileTypes: true });
      const files = await Promise.all(entries.map((e) => (e.isDirectory() ? sourceFiles(join(dir, e.name)) : Promise.resolve([join(dir, e.name)]))));
      return files.flat().filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'));
    }
    async function envReaders(): Promise<Record<string, string>> {
      const src = join(import.meta.dirname, '..', 'src');
      const found: Record<string, string> = {};
      for (const file of await sourceFiles(src)) {
        const text = await readFile(file, 'utf8');
        if (ENV_READ.test(text)) found[relative(src, file)] = text;
      }
      return found;
    }

    it('when src/ is scanned, then no file but src/platform/config.ts reads a secret from the environment, nor holds a copy of a default secret', async () => {
      const readers = await envReaders();
      assert.ok('platform/config.ts' in readers, 'the scan finds the config reading process.env (so it can find others)');
      for (const [file, text] of Object.entries(readers)) {
        if (file === 'platform/config.ts') continue;
        // Each use must be one we can read: by name, by destructuring, or spread into a child's environment.
        const named = [...text.matchAll(/process\.env\.([A-Za-z0-9_]+)|process\.env\[\s*['"]([A-Za-z0-9_]+)['"]\s*\]/g)].map((m) => m[1] ?? m[2]!);
        const destructurings = [...text.matchAll(/\{([^{}]*)\}\s*=\s*process\.env\b/g)];
        const destructured = destructurings.flatMap((m) => m[1]!.split(',').map((part) => part.split(':')[0]!.trim()).filter(Boolean));
        const forwarded = [...text.matchAll(/\.\.\.\s*process\.env\b/g)].length;
        const uses = [...text.matchAll(/\bprocess\s*(?:\.\s*env\b|\[\s*['"`]env['"`]\s*\])/g)].length;
        assert.equal(uses, named.length + destructurings.length + forwarded, `${file} reads process.env wholesale or by a computed name`);
        assert.ok(!/from\s+['"](?:node:)?process['"]/.test(text), `${file} imports the environment from node:process`);
        assert.deepEqual([...named, ...destructured].filter((n) => SECRET_VARS.includes(n)), [], `${file} reads a secret from process.env`);
      }
      const defaults = ['dev-only-secret-change-me-please', 'whsec_flashsale_dev_only_secret', 'sk_test_flashsale_dev_key'];
      const src = join(import.meta.dirname, '..', 'src');
      for (const file of await sourceFiles(src)) {
        if (relative(src, file) === 'platform/config.ts') continue;
        const text = await readFile(file, 'utf8');
        for (const d of defaults) assert.ok(!text.includes(d), `${relative(src, file)} holds the default secret ${d}`);
      }
    });

    it('when src/ is scanned, then src/platform/config.ts is the only file reading process.env at all', async () => {
      // cli/child.ts hands the whole environment on to the flashsale processes it starts; it reads no value.
      assert.deepEqual(Object.keys(await envReaders()).filter((file) => file !== 'cli/child.ts'), ['platform/config.ts']);
    });

    const production = { NODE_ENV: 'production', JWT_SECRET: 'a-real-production-jwt-secret-0123456789', PSP_API_KEY: 'sk_live_real_key_0123456789', PSP_WEBHOOK_SECRET: 'whsec_real_production_secret_0123', SEED_DEMO: 'false' };
    const problemsOf = (env: Record<string, string>) => {
      try {
        loadConfig(env);
        return undefined;
      } catch (error) {
        assert.ok(error instanceof ConfigError, String(error));
        return error.message;
      }
    };

    it('when NODE_ENV=production runs on the development secrets or the demo seed, then the config refuses to load, naming each', () => {
      const all = problemsOf({ NODE_ENV: 'production' });
      for (const name of ['JWT_SECRET', 'PSP_API_KEY', 'PSP_WEBHOOK_SECRET', 'SEED_DEMO']) assert.match(all ?? '', new RegExp(`\\b${name}\\b`), `names ${name}`);
      for (const name of ['JWT_SECRET', 'PSP_API_KEY', 'PSP_WEBHOOK_SECRET', 'SEED_DEMO']) {
        const { [name]: _dropped, ...rest } = production as Record<string, string>;
        const message = problemsOf(rest);
        assert.ok(message, `${name} left at its default is refused`);
        assert.match(message, new RegExp(`\\b${name}\\b`));
      }
      assert.equal(problemsOf(production), undefined, 'real secrets load');
      assert.equal(problemsOf({ NODE_ENV: 'development' }), undefined, 'development keeps its defaults');
    });

    it('when the production webhook secret still contains the development secret (as one of a rotation list, or padded with spaces), then the config refuses it', {
    }, () => {
      for (const secret of ['whsec_flashsale_dev_only_secret,whsec_real_production_secret_0123', ' whsec_flashsale_dev_only_secret ']) {
        const env = { ...production, PSP_WEBHOOK_SECRET: secret };
        const accepted = problemsOf(env) === undefined;
        if (accepted) {
          // What that would mean: a webhook signed with the published development secret gets in.
          const gateway = HttpPaymentGateway.fromConfig(loadConfig(env));
          const body = JSON.stringify({ id: 'evt_x', object: 'event', type: 'payment_intent.succeeded', created: nowS(), data: { object: { id: 'pi_x', object: 'payment_intent', amount: 1, currency: 'usd', status: 'succeeded', metadata: {}, last_payment_error: null } } });
          assert.doesNotThrow(() => gateway.verifyWebhook(body, signatureHeader(body, nowS(), ['whsec_flashsale_dev_only_secret']), Date.now()));
        }
        assert.equal(accepted, false, `PSP_WEBHOOK_SECRET=${JSON.stringify(secret)} loads in production`);
      }
    });

    describe('in the logs', () => {
      let cli: CliProcess | undefined;
      let client: HttpClient;
      const send = counted('secrets', () => client);

      before(async () => {
        const started = await loggedProcess;
        if ('error' in started) throw started.error;
        cli = started.cli;
        client = httpClient(cli.url, 4);
      });
      after(() => client?.close());

      it('when a real process serves register, login, order, pay and webhook traffic, then its logs hold no secret, token, password or Authorization value', async () => {
        const passwords = { merchant: `merchant-pw-${randomUUID()}`, buyer: `buyer-pw-${randomUUID()}`, wrong: `wrong-pw-${randomUUID()}` };
        const adminToken = new TokenService(secrets.JWT_SECRET, 3600).issue({ userId: randomUUID(), role: 'admin' });
        const tokens: string[] = [adminToken];
        const ok = (res: HttpResponse, status: number) => {
          assert.equal(res.status, status, JSON.stringify(res.body));
          return res.body;
        };
        const merchantEmail = `merchant-${randomUUID()}@test.local`;
        ok(await send('POST', '/v1/admin/merchants', { token: adminToken, body: { email: merchantEmail, password: passwords.merchant, shopName: 'Log shop' } }), 201);
        const merchant = ok(await send('POST', '/v1/auth/login', { body: { email: merchantEmail, password: passwords.merchant } }), 200).token as string;
        tokens.push(merchant);
        const product = ok(await send('POST', '/v1/products', { token: merchant, body: { name: 'Log product', price: 900, currency: 'USD' } }), 201);
        const sale = ok(await send('POST', '/v1/flash-sales', {
          token: merchant, body: {
            name: 'Log sale', startsAt: new Date(Date.now() - 1000).toISOString(), endsAt: new Date(Date.now() + 3600_000).toISOString(),
            paymentWindowS: 600, holdMode: 'order', items: [{ productId: product.id, flashPrice: 500, stock: 5, perUserLimit: 2 }],
          },
        }), 201);
        const buyerEmail = `buyer-${randomUUID()}@test.local`;
        ok(await send('POST', '/v1/auth/register', { body: { email: buyerEmail, password: passwords.buyer }, headers: { 'idempotency-key': 'log-register' } }), 201);
        assertError(await send('POST', '/v1/auth/login', { body: { email: buyerEmail, password: passwords.wrong } }), 401, 'invalid_credentials');
        const buyer = ok(await send('POST', '/v1/auth/login', { body: { email: buyerEmail, password: passwords.buyer } }), 200).token as string;
        tokens.push(buyer);
        const order = ok(await send('POST', '/v1/orders', { token: buyer, headers: { 'idempotency-key': 'log-order' }, body: { items: [{ saleItemId: sale.items[0].id, quantity: 1 }] } }), 201);
        const payment = ok(await send('POST', `/v1/orders/${order.id}/payment`, { token: buyer }), 201);
        counts.secrets = (counts.secrets ?? 0) + 1;
        assert.equal((await fetch(new URL(`/pay/${payment.providerPaymentId}/pay`, payment.hostedUrl), { method: 'POST', redirect: 'manual' })).status, 303);
        await until(async () => (await send('GET', `/v1/orders/${order.id}`, { token: buyer })).body.status === 'PAID', 'the payment webhook', 15_000);
        // Refusals log too: a forged webhook, a bad token, a wrong role.
        const forged = JSON.stringify({ id: 'evt_forged', type: 'payment_intent.succeeded' });
        assertError(await send('POST', '/v1/payments/webhook', { rawBody: forged, headers: { 'content-type': 'application/json', 'stripe-signature': signatureHeader(forged, nowS(), ['whsec_not_ours_0123456789']) } }), 400, 'invalid_signature');
        assertError(await send('GET', '/v1/orders', { headers: { authorization: `Bearer ${buyer.slice(0, -2)}xx` } }), 401, 'unauthorized');
        assertError(await send('GET', '/v1/admin/audit', { token: buyer }), 403, 'forbidden');
        // Surfaces anyone may read must not carry them either.
        const exposed = await Promise.all(['/ready', '/metrics', '/openapi.json', '/health'].map(async (p) => JSON.stringify((await send('GET', p)).body)));

        await stopProcess(cli!);
        const log = cli!.output();
        assert.match(log, /"msg":"request completed"/, 'request logs were captured');
        assert.ok(log.includes(order.id) || log.includes('/v1/orders'), 'the traffic above is in the captured log');
        const forbidden: Record<string, string> = {
          ...secrets,
          ...Object.fromEntries(Object.entries(passwords).map(([k, v]) => [`${k} password`, v])),
          ...Object.fromEntries(tokens.flatMap((t, i) => [[`token ${i}`, t], [`token ${i} signature`, t.split('.')[2]!], [`Authorization ${i}`, `Bearer ${t}`]])),
        };
        const leaks = Object.entries(forbidden).filter(([, value]) => log.includes(value)).map(([name]) => name);
        assert.deepEqual(leaks, [], 'found in the logs');
        const surfaced = Object.entries(forbidden).filter(([, value]) => exposed.some((text) => text.includes(value))).map(([name]) => name);
        assert.deepEqual(surfaced, [], 'found in /ready, /metrics, /openapi.json or /health');
      });
    });
  });
});
