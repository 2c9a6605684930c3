import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ERRORS } from '../src/platform/errors.ts';
import { startHarness, type Harness, type HttpResponse } from './support/harness.ts';

/**
 * Every mutating endpoint against a table of malformed requests. Each one must be refused with a
 * 4xx and the error body, and leave every table and the live stock exactly as they were.
 */

type Method = 'POST' | 'DELETE';
type Key = string | number;

interface Attempt {
  name: string;
  /** Statuses this attempt may get; any 4xx when absent. */
  expect?: number[];
  path?: string;
  body?: unknown;
  rawBody?: string;
  headers?: Record<string, string>;
}

interface Operation {
  name: string;
  method: Method;
  path: string;
  token: () => string | undefined;
  /** The well-formed body, or undefined when the operation takes none. */
  valid: () => Record<string, unknown> | undefined;
  /** Fields of the valid body and the values each must refuse (built once the fixtures exist). */
  fields: () => Array<{ at: Key[]; bad: unknown[]; optional?: boolean; expect?: number[] }>;
  /** Fields a client must not be able to set: sent along with the valid body. */
  injected: Array<{ at: Key[]; value: unknown }>;
  /** Path variants with a bad parameter. */
  badPaths?: Array<{ name: string; path: string; expect?: number[] }>;
  idempotent: boolean;
  /** Attempts specific to this operation. */
  extra?: () => Attempt[];
  /** The status of the valid request, sent once all the bad ones are done. */
  okStatus: number;
}

const ZERO_UUID = '00000000-0000-4000-8000-000000000000';
const LONG = 'x'.repeat(10_000);
const NOT_STRING: unknown[] = [42, 0, -1, 1e308, true, false, null, [], ['a'], {}, { a: 'b' }];
const NOT_NUMBER: unknown[] = ['1', '', '1e3', 'NaN', 'Infinity', true, null, [], [1], {}, { n: 1 }];
const text = (min: number, max: number): unknown[] => [...NOT_STRING, ...(min > 0 ? [''] : []), 'x'.repeat(max + 1), '😀'.repeat(max + 1), 'a\u0000b', LONG];
const integer = (min: number, max: number): unknown[] => [
  ...NOT_NUMBER, min - 1, max + 1, -1, 1.5, 0.000001, -0.5, 1e308, -1e308, 2 ** 53 + 1, 2 ** 63, -(2 ** 63),
];
const email: unknown[] = [...NOT_STRING, '', 'plain', 'a@', '@example.com', 'a b@example.com', ' lead@example.com', '😀@example.com', 'ü@example.com',
  'a\u0000@example.com', `${'x'.repeat(250)}@example.com`, LONG];
const password: unknown[] = [...NOT_STRING, '', 'short', '😀😀😀😀', 'x'.repeat(129), LONG];
const uuid: unknown[] = [...NOT_STRING, '', 'not-a-uuid', `urn:uuid:${ZERO_UUID}`, `{${ZERO_UUID}}`, ZERO_UUID.replaceAll('-', ''), `${ZERO_UUID}0`,
  ZERO_UUID.slice(1), '😀', `${ZERO_UUID.slice(0, 35)}\u0000`, LONG];
const currency: unknown[] = [...NOT_STRING, '', 'usd', 'US', 'USDX', 'U$D', '€€€', '😀', 'U\u0000D', 'USD ', LONG];
const instant: unknown[] = [...NOT_STRING, 1_893_456_000_000, '', 'tomorrow', '2030-01-01', '2030-01-01T00:00:00', '2030-13-01T00:00:00Z', '2030-02-30T00:00:00Z',
  '2030-06-30T23:59:60Z', '0000-01-01T00:00:00Z', '9999-12-31T23:59:59-23:59', '2030-01-01T00:00:00Z😀', LONG];
const array = (max: number, element: unknown): unknown[] => [{}, 'x', 1, null, true, [], Array.from({ length: max + 1 }, () => element)];
const element: unknown[] = ['x', 1, null, true, [], [{}]];

/** A copy of `body` with the value at `at` replaced (or removed when `value` is REMOVE). */
const REMOVE = Symbol('remove');
function edit(body: Record<string, unknown>, at: Key[], value: unknown): Record<string, unknown> {
  const copy = structuredClone(body);
  let node: Record<Key, unknown> = copy;
  for (const key of at.slice(0, -1)) node = node[key] as Record<Key, unknown>;
  const last = at[at.length - 1]!;
  if (value === REMOVE) delete node[last];
  else node[last] = value;
  return copy;
}

const show = (value: unknown): string => {
  const shown = JSON.stringify(value) ?? String(value);
  return shown.length > 40 ? `${shown.slice(0, 37)}…(${shown.length})` : shown;
};

/** Malformed requests that do not depend on the operation's fields: envelope, encoding, size, headers. */
function envelopeAttempts(op: Operation): Attempt[] {
  const valid = op.valid();
  const validText = JSON.stringify(valid ?? { unexpected: true });
  const json = { 'content-type': 'application/json' };
  const attempts: Attempt[] = [
    { name: 'bad JSON {"a":', rawBody: '{"a":', headers: json, expect: [400] },
    { name: 'truncated JSON', rawBody: validText.slice(0, -1), headers: json, expect: [400] },
    { name: 'trailing garbage after JSON', rawBody: `${validText} x`, headers: json, expect: [400] },
    { name: 'single-quoted JSON', rawBody: validText.replaceAll('"', "'"), headers: json, expect: [400] },
    { name: 'JSON with a comment', rawBody: `/* hi */ ${validText}`, headers: json, expect: [400] },
    { name: 'empty body declared as JSON', rawBody: '', headers: json, expect: [400] },
    { name: 'null body', rawBody: 'null', headers: json, expect: [422] },
    { name: 'array body', rawBody: '[]', headers: json, expect: [422] },
    { name: 'the valid body wrapped in an array', rawBody: `[${validText}]`, headers: json, expect: [422] },
    { name: 'string body', rawBody: '"hello"', headers: json, expect: [422] },
    { name: 'number body', rawBody: '42', headers: json, expect: [422] },
    { name: 'boolean body', rawBody: 'true', headers: json, expect: [422] },
    { name: 'body as text/plain', rawBody: validText, headers: { 'content-type': 'text/plain' }, expect: [415, 422] },
    { name: 'body as application/xml', rawBody: '<order><price>0</price></order>', headers: { 'content-type': 'application/xml' }, expect: [415] },
    { name: 'body as a form', rawBody: 'price=0&role=admin', headers: { 'content-type': 'application/x-www-form-urlencoded' }, expect: [415] },
    { name: 'body as multipart', rawBody: '--b\r\ncontent-disposition: form-data; name="a"\r\n\r\n1\r\n--b--', headers: { 'content-type': 'multipart/form-data; boundary=b' }, expect: [415] },
    { name: 'body as application/json-patch+json', rawBody: validText, headers: { 'content-type': 'application/json-patch+json' }, expect: [415] },
    { name: 'body without a content type', rawBody: validText, expect: [415] },
    { name: 'body over the 64 KiB limit', rawBody: JSON.stringify({ ...valid, pad: 'x'.repeat(70_000) }), headers: json, expect: [413] },
    { name: 'body of 1 MiB', rawBody: `{"a":"${'x'.repeat(1024 * 1024)}"}`, headers: json, expect: [413] },
    { name: '20 000 nested arrays', rawBody: `${'['.repeat(20_000)}${']'.repeat(20_000)}`, headers: json, expect: [422] },
    { name: '5 000 nested objects', rawBody: `${'{"a":'.repeat(5000)}1${'}'.repeat(5000)}`, headers: json, expect: [422] },
    { name: '__proto__ injection', rawBody: `{"__proto__":{"role":"admin","price":0},${validText.slice(1)}`.replace(',}', '}'), headers: json, expect: [400] },
    { name: 'constructor.prototype injection', rawBody: `{"constructor":{"prototype":{"role":"admin"}},${validText.slice(1)}`.replace(',}', '}'), headers: json, expect: [400] },
  ];
  if (op.idempotent) {
    for (const [name, key] of [['with a space', 'key with space'], ['of 256 characters', 'k'.repeat(256)], ['non-ASCII', 'clé-é']] as const) {
      attempts.push({ name: `Idempotency-Key ${name}`, ...(valid ? { body: valid } : {}), headers: { 'idempotency-key': key }, expect: [422] });
    }
  }
  return attempts;
}

/** Per field: each bad value, and the field missing; then injected fields. */
function fieldAttempts(op: Operation): Attempt[] {
  const valid = op.valid();
  if (!valid) return [];
  const attempts: Attempt[] = [];
  for (const field of op.fields()) {
    const where = field.at.join('.');
    const expect = field.expect ?? [422];
    for (const value of field.bad) attempts.push({ name: `${where} = ${show(value)}`, body: edit(valid, field.at, value), expect });
    if (!field.optional) attempts.push({ name: `${where} missing`, body: edit(valid, field.at, REMOVE), expect });
  }
  for (const { at, value } of op.injected) attempts.push({ name: `injected ${at.join('.')} = ${show(value)}`, body: edit(valid, at, value), expect: [422] });
  const last = Object.keys(valid).at(-1)!;
  attempts.push({
    name: `duplicate key ${last}, the second one bad`,
    rawBody: `${JSON.stringify(valid).slice(0, -1)},"${last}":{"bad":true}}`, headers: { 'content-type': 'application/json' }, expect: [422],
  });
  return attempts;
}

/** Requests with a body to an operation that takes none. */
function unexpectedBodyAttempts(op: Operation, injected: Record<string, unknown>): Attempt[] {
  if (op.valid()) return [];
  return [
    { name: 'a JSON object body with fields', body: injected, expect: [422] },
    ...Object.entries(injected).map(([key, value]) => ({ name: `injected ${key} = ${show(value)}`, body: { [key]: value }, expect: [422] })),
    { name: 'a JSON array body', body: [injected], expect: [422] },
    { name: 'a JSON string body', body: 'cancel', expect: [422] },
  ];
}

describe('malformed requests to every mutating endpoint', () => {
  let h: Harness;
  const counts: Record<string, number> = {};

  // What the operations act on; each valid request must be able to succeed once the bad ones are done.
  let merchantToken: string;
  let productId: string;
  let otherMerchantsProductId: string;
  let orderItemId: string;
  let cartItemId: string;
  let loginEmail: string;
  const buyers = {} as Record<'orderer' | 'canceller' | 'adder' | 'checkouter' | 'remover' | 'other', { token: string; userId: string }>;
  let orderToCancel: string;
  let othersOrder: string;
  let holdToRemove: string;
  let othersHold: string;

  before(async () => {
    h = await startHarness();
    const orderSale = await h.createSale({ items: [{ stock: 20, perUserLimit: 5 }] });
    const cartSale = await h.createSale({ holdMode: 'cart', items: [{ stock: 20, perUserLimit: 5 }] });
    const other = await h.createSale();
    merchantToken = orderSale.merchantToken;
    orderItemId = orderSale.sale.items[0]!.id;
    cartItemId = cartSale.sale.items[0]!.id;
    productId = orderSale.sale.items[0]!.productId;
    otherMerchantsProductId = other.sale.items[0]!.productId;
    for (const name of ['orderer', 'canceller', 'adder', 'checkouter', 'remover', 'other'] as const) buyers[name] = h.buyerToken();

    const ok = (res: HttpResponse, status: number) => assert.equal(res.status, status, JSON.stringify(res.body));
    const order = (token: string) => h.http.request('POST', '/v1/orders', { token, body: { items: [{ saleItemId: orderItemId, quantity: 1 }] } });
    const hold = (token: string) => h.http.request('POST', '/v1/cart/items', { token, body: { saleItemId: cartItemId, quantity: 1 } });
    const placed = await order(buyers.canceller.token);
    ok(placed, 201);
    orderToCancel = placed.body.id;
    const others = await order(buyers.other.token);
    ok(others, 201);
    othersOrder = others.body.id;
    ok(await hold(buyers.checkouter.token), 201);
    const held = await hold(buyers.remover.token);
    ok(held, 201);
    holdToRemove = held.body.holdId;
    const othersHeld = await hold(buyers.other.token);
    ok(othersHeld, 201);
    othersHold = othersHeld.body.holdId;
    loginEmail = 'login-target@example.com';
    ok(await h.http.request('POST', '/v1/auth/register', { body: { email: loginEmail, password: 'login-target-pw' } }), 201);
  });

  after(async () => {
    console.log('malformed requests tried per operation:');
    for (const [name, count] of Object.entries(counts)) console.log(`  ${name.padEnd(16)} ${String(count).padStart(4)}`);
    console.log(`  ${'total'.padEnd(16)} ${String(Object.values(counts).reduce((a, b) => a + b, 0)).padStart(4)}`);
    await h.close();
  });

  /** Every table a rejected request could touch, and the live stock of both items. */
  async function snapshot(): Promise<Record<string, unknown>> {
    const [row] = await h.system.db.query(`select
      (select count(*) from users) as users, (select count(*) from shops) as shops, (select count(*) from products) as products,
      (select count(*) from flash_sales) as flash_sales, (select count(*) from sale_items) as sale_items,
      (select count(*) from orders) as orders, (select count(*) from orders where status = 'PENDING_PAYMENT') as pending_orders,
      (select count(*) from order_items) as order_items,
      (select count(*) from holds) as holds, (select count(*) from holds where status = 'held') as live_holds,
      (select count(*) from outbox) as outbox, (select count(*) from idempotency_keys) as idempotency_keys,
      (select coalesce(sum(available), 0) from stock_items) as db_available, (select coalesce(sum(quantity), 0) from purchase_quotas) as quotas`);
    return {
      ...row,
      orderItemAvailable: await h.system.inventory.available(orderItemId),
      cartItemAvailable: await h.system.inventory.available(cartItemId),
    };
  }

  const inHours = (hours: number) => new Date(Date.now() + hours * 3600_000).toISOString();
  const validLine = () => ({ saleItemId: orderItemId, quantity: 1 });
  const mass = { role: 'admin', userId: ZERO_UUID, status: 'PAID', price: 0 };

  const operations: Operation[] = [
    {
      name: 'register', method: 'POST', path: '/v1/auth/register', token: () => undefined, idempotent: true, okStatus: 201,
      valid: () => ({ email: 'valid-register@example.com', password: 'register-pw-1' }),
      fields: () => [{ at: ['email'], bad: email }, { at: ['password'], bad: password }],
      injected: [{ at: ['role'], value: 'admin' }, { at: ['id'], value: ZERO_UUID }, { at: ['passwordHash'], value: 'scrypt$x$y' }, { at: ['createdAt'], value: '2000-01-01T00:00:00Z' }],
    },
    {
      name: 'login', method: 'POST', path: '/v1/auth/login', token: () => undefined, idempotent: false, okStatus: 200,
      valid: () => ({ email: loginEmail, password: 'login-target-pw' }),
      // Any string under the length caps is a fair guess: a wrong one is 401, not 422.
      fields: () => [{ at: ['email'], bad: email, expect: [401, 422] }, { at: ['password'], bad: password, expect: [401, 422] }],
      injected: [{ at: ['role'], value: 'admin' }, { at: ['userId'], value: ZERO_UUID }, { at: ['ttl'], value: 1e9 }],
    },
    {
      name: 'createMerchant', method: 'POST', path: '/v1/admin/merchants', token: () => h.adminToken(), idempotent: true, okStatus: 201,
      valid: () => ({ email: 'valid-merchant@example.com', password: 'merchant-pw-1', shopName: 'Valid shop' }),
      fields: () => [{ at: ['email'], bad: email }, { at: ['password'], bad: password }, { at: ['shopName'], bad: text(1, 200) }],
      injected: [{ at: ['role'], value: 'admin' }, { at: ['shopId'], value: ZERO_UUID }, { at: ['ownerId'], value: ZERO_UUID }, { at: ['userId'], value: ZERO_UUID }],
    },
    {
      name: 'createProduct', method: 'POST', path: '/v1/products', token: () => merchantToken, idempotent: true, okStatus: 201,
      valid: () => ({ name: 'Valid product', description: 'fine', price: 1999, currency: 'USD' }),
      fields: () => [
        { at: ['name'], bad: text(1, 200) }, { at: ['description'], bad: text(0, 5000), optional: true },
        { at: ['price'], bad: integer(0, 1_000_000_000_000) }, { at: ['currency'], bad: currency },
      ],
      injected: [{ at: ['shopId'], value: ZERO_UUID }, { at: ['id'], value: ZERO_UUID }, { at: ['createdAt'], value: '2000-01-01T00:00:00Z' }, { at: ['status'], value: 'active' }, { at: ['stock'], value: 5 }],
    },
    {
      name: 'createFlashSale', method: 'POST', path: '/v1/flash-sales', token: () => merchantToken, idempotent: true, okStatus: 201,
      valid: () => ({
        name: 'Valid sale', startsAt: inHours(1), endsAt: inHours(2), paymentWindowS: 600, holdMode: 'order',
        items: [{ productId, flashPrice: 999, stock: 10, perUserLimit: 2 }],
      }),
      fields: () => [
        { at: ['name'], bad: text(1, 200) }, { at: ['startsAt'], bad: instant }, { at: ['endsAt'], bad: instant },
        { at: ['paymentWindowS'], bad: integer(1, 7 * 86400), optional: true }, { at: ['holdMode'], bad: [...NOT_STRING, '', 'ORDER', 'both', '😀'], optional: true },
        { at: ['items'], bad: array(200, { productId, flashPrice: 1, stock: 1 }) }, { at: ['items', 0], bad: element },
        { at: ['items', 0, 'productId'], bad: [...uuid, ZERO_UUID, otherMerchantsProductId] },
        { at: ['items', 0, 'flashPrice'], bad: integer(0, 1_000_000_000_000) }, { at: ['items', 0, 'stock'], bad: integer(1, 10_000_000) },
        { at: ['items', 0, 'perUserLimit'], bad: integer(1, 1000), optional: true },
      ],
      injected: [
        { at: ['shopId'], value: ZERO_UUID }, { at: ['status'], value: 'active' }, { at: ['currency'], value: 'EUR' }, { at: ['id'], value: ZERO_UUID },
        { at: ['items', 0, 'remaining'], value: 1e6 }, { at: ['items', 0, 'id'], value: ZERO_UUID }, { at: ['items', 0, 'productName'], value: 'x' },
      ],
      extra: () => [
        { name: 'endsAt before startsAt', body: { name: 'x', startsAt: inHours(2), endsAt: inHours(1), items: [{ productId, flashPrice: 1, stock: 1 }] }, expect: [422] },
        { name: 'the same product twice', body: { name: 'x', startsAt: inHours(1), endsAt: inHours(2), items: [{ productId, flashPrice: 1, stock: 1 }, { productId, flashPrice: 2, stock: 2 }] }, expect: [422] },
      ],
    },
    {
      name: 'createOrder', method: 'POST', path: '/v1/orders', token: () => buyers.orderer.token, idempotent: true, okStatus: 201,
      valid: () => ({ items: [validLine()] }),
      fields: () => [
        { at: ['items'], bad: array(20, validLine()), expect: [409, 422] }, { at: ['items', 0], bad: element },
        { at: ['items', 0, 'saleItemId'], bad: [...uuid, ZERO_UUID, cartItemId], expect: [409, 422] },
        { at: ['items', 0, 'quantity'], bad: [...integer(1, 100), 6], expect: [409, 422] },
      ],
      injected: [
        { at: ['userId'], value: ZERO_UUID }, { at: ['status'], value: 'PAID' }, { at: ['totalAmount'], value: 0 }, { at: ['currency'], value: 'EUR' },
        { at: ['items', 0, 'unitPrice'], value: 0 }, { at: ['items', 0, 'price'], value: 0 }, { at: ['items', 0, 'userId'], value: ZERO_UUID }, { at: ['items', 0, 'holdId'], value: ZERO_UUID },
      ],
    },
    {
      name: 'cancelOrder', method: 'POST', path: '/v1/orders/:id/cancel', token: () => buyers.canceller.token, idempotent: true, okStatus: 200,
      valid: () => undefined, fields: () => [], injected: [],
      badPaths: [
        { name: 'id not a uuid', path: '/v1/orders/not-a-uuid/cancel', expect: [422] },
        { name: 'id as urn:uuid', path: `/v1/orders/urn:uuid:${ZERO_UUID}/cancel`, expect: [422] },
        { name: 'id with %00', path: '/v1/orders/%00/cancel', expect: [422] },
        { name: 'id with an emoji', path: `/v1/orders/${encodeURIComponent('😀')}/cancel`, expect: [422] },
        { name: 'id with a bad %-escape', path: '/v1/orders/%E0%A4%A/cancel', expect: [400] },
        { name: 'id of 5 000 characters', path: `/v1/orders/${'a'.repeat(5000)}/cancel`, expect: [414] },
        { name: 'id with dot segments', path: '/v1/orders/..%2F..%2Fadmin/cancel', expect: [422] },
        { name: 'id unknown', path: `/v1/orders/${ZERO_UUID}/cancel`, expect: [404] },
        { name: "id of another buyer's order", path: '/v1/orders/:other/cancel', expect: [404] },
      ],
    },
    {
      name: 'addCartItem', method: 'POST', path: '/v1/cart/items', token: () => buyers.adder.token, idempotent: true, okStatus: 201,
      valid: () => ({ saleItemId: cartItemId, quantity: 1 }),
      fields: () => [
        { at: ['saleItemId'], bad: [...uuid, ZERO_UUID, orderItemId], expect: [409, 422] },
        { at: ['quantity'], bad: [...integer(1, 100), 6], expect: [409, 422] },
      ],
      injected: [{ at: ['userId'], value: ZERO_UUID }, { at: ['unitPrice'], value: 0 }, { at: ['expiresAt'], value: '2999-01-01T00:00:00Z' }, { at: ['holdId'], value: ZERO_UUID }],
    },
    {
      name: 'checkout', method: 'POST', path: '/v1/checkout', token: () => buyers.checkouter.token, idempotent: true, okStatus: 201,
      valid: () => undefined, fields: () => [], injected: [],
    },
    {
      name: 'removeCartItem', method: 'DELETE', path: '/v1/cart/items/:holdId', token: () => buyers.remover.token, idempotent: false, okStatus: 204,
      valid: () => undefined, fields: () => [], injected: [],
      badPaths: [
        { name: 'holdId not a uuid', path: '/v1/cart/items/not-a-uuid', expect: [422] },
        { name: 'holdId as urn:uuid', path: `/v1/cart/items/urn:uuid:${ZERO_UUID}`, expect: [422] },
        { name: 'holdId with %00', path: '/v1/cart/items/%00', expect: [422] },
        { name: 'holdId with a bad %-escape', path: '/v1/cart/items/%E0%A4%A', expect: [400] },
        { name: 'holdId of 5 000 characters', path: `/v1/cart/items/${'a'.repeat(5000)}`, expect: [414] },
        { name: 'holdId unknown', path: `/v1/cart/items/${ZERO_UUID}`, expect: [404] },
        { name: "holdId of another buyer's hold", path: '/v1/cart/items/:other', expect: [404] },
      ],
    },
  ];

  /** The operation's path with its parameter filled: the caller's own target, or another buyer's. */
  function resolve(op: Operation, path: string): string {
    if (op.name === 'cancelOrder') return path.replace(':id', orderToCancel).replace(':other', othersOrder);
    if (op.name === 'removeCartItem') return path.replace(':holdId', holdToRemove).replace(':other', othersHold);
    return path;
  }

  function attemptsOf(op: Operation): Attempt[] {
    return [
      ...envelopeAttempts(op),
      ...fieldAttempts(op),
      ...unexpectedBodyAttempts(op, { ...mass, userId: buyers.other.userId, orderId: othersOrder, holdId: othersHold, items: [validLine()] }),
      ...(op.badPaths ?? []).map((p) => ({ name: p.name, path: p.path, ...(p.expect ? { expect: p.expect } : {}) })),
      ...(op.extra?.() ?? []),
    ];
  }

  for (const op of operations) {
    it(`when ${op.name} (${op.method} ${op.path}) gets malformed requests, then each is a 4xx with an error body and nothing changes`, async () => {
      const baseline = await snapshot();
      const attempts = attemptsOf(op);
      const failures: string[] = [];
      for (const attempt of attempts) {
        const token = op.token();
        const res = await h.http.request(op.method, resolve(op, attempt.path ?? op.path), {
          ...(token ? { token } : {}),
          ...(attempt.body !== undefined ? { body: attempt.body } : {}),
          ...(attempt.rawBody !== undefined ? { rawBody: attempt.rawBody } : {}),
          ...(attempt.headers ? { headers: attempt.headers } : {}),
        });
        const label = `${op.name}: ${attempt.name} → ${res.status} ${JSON.stringify(res.body)?.slice(0, 160)}`;
        const error = (res.body as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
        if (res.status < 400 || res.status >= 500) failures.push(`not a 4xx: ${label}`);
        else if (attempt.expect && !attempt.expect.includes(res.status)) failures.push(`expected ${attempt.expect.join('/')}: ${label}`);
        if (typeof error?.code !== 'string' || !(error.code in ERRORS) || typeof error.message !== 'string' || error.message === '') failures.push(`no error body: ${label}`);
        const now = await snapshot();
        try {
          assert.deepEqual(now, baseline);
        } catch {
          failures.push(`state changed: ${label}\n    before ${JSON.stringify(baseline)}\n    after  ${JSON.stringify(now)}`);
          break;
        }
      }
      counts[op.name] = attempts.length;
      assert.deepEqual(failures, [], `${failures.length} of ${attempts.length} malformed requests misbehaved:\n${failures.join('\n')}`);
    });
  }

  it('when the well-formed request is sent after all of that, then each operation succeeds (so every refusal above was for the defect)', async () => {
    for (const op of operations) {
      const token = op.token();
      const body = op.valid();
      const res = await h.http.request(op.method, resolve(op, op.path), { ...(token ? { token } : {}), ...(body ? { body } : {}) });
      assert.equal(res.status, op.okStatus, `${op.name}: ${JSON.stringify(res.body)}`);
    }
  });
});
