import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ERRORS } from '../src/platform/errors.ts';
import { startHarness, type Harness } from './support/harness.ts';

interface Schema {
  $ref?: string;
  type?: string;
  required?: string[];
  properties?: Record<string, Schema>;
  enum?: unknown[];
  const?: unknown;
  anyOf?: Schema[];
  oneOf?: Schema[];
}
interface Operation {
  operationId?: string;
  security?: unknown[];
  responses: Record<string, { content?: Record<string, { schema?: Schema }> }>;
}
interface Document {
  openapi: string;
  paths: Record<string, Record<string, Operation>>;
  components?: { schemas?: Record<string, Schema> };
}

const EXPECTED_OPERATIONS = [
  'register', 'login', 'createMerchant', 'createProduct', 'listProducts', 'createFlashSale', 'listFlashSales', 'getFlashSale',
  'createOrder', 'addCartItem', 'checkout', 'getOrder', 'listOrders', 'cancelOrder', 'audit',
  // Core II
  'payOrder', 'paymentWebhook', 'listNotifications', 'listDeadLetters', 'replayDeadLetter',
  // issue #15: sale management
  'updateFlashSale', 'cancelFlashSale', 'addSaleStock', 'listShopNotifications', 'setMyPhone', 'deleteMyPhone',
  // Fulfillment and the merchant's orders (#15)
  'listShopOrders', 'exportShopOrders', 'createShipment', 'updateShipment', 'cancelOrderLine',
  // the web face
  'watchFlashSale', 'watchOrder',
];
const MUTATING = new Set(['post', 'put', 'patch', 'delete']);

describe('the API description', () => {
  let h: Harness;
  let doc: Document;
  before(async () => {
    h = await startHarness();
    const res = await h.http.request<Document>('GET', '/openapi.json');
    assert.equal(res.status, 200);
    doc = res.body;
  });
  after(() => h.close());

  const operations = () => Object.entries(doc.paths).flatMap(([path, methods]) =>
    Object.entries(methods).map(([method, operation]) => ({ path, method, operation })));

  const resolve = (schema: Schema): Schema => {
    if (!schema.$ref) return schema;
    const name = schema.$ref.replace('#/components/schemas/', '');
    const target = doc.components?.schemas?.[name];
    assert.ok(target, `dangling $ref ${schema.$ref}`);
    return resolve(target);
  };

  /** The literal values a schema admits: `enum`, `const`, or a union of those. */
  const literals = (schema: Schema): unknown[] => {
    const s = resolve(schema);
    if (s.enum) return s.enum;
    if (s.const !== undefined) return [s.const];
    return [...(s.anyOf ?? []), ...(s.oneOf ?? [])].flatMap(literals);
  };

  /** Throws unless `schema` is `{ error: { code: <one of ERRORS>, message: string } }`, both required. */
  const assertErrorBody = (schema: Schema | undefined, where: string) => {
    assert.ok(schema, `${where}: no schema`);
    const body = resolve(schema);
    assert.equal(body.type, 'object', where);
    assert.ok(body.required?.includes('error'), `${where}: error not required`);
    const error = resolve(body.properties?.error ?? {});
    assert.equal(error.type, 'object', where);
    assert.ok(error.required?.includes('code') && error.required.includes('message'), `${where}: code and message not required`);
    assert.equal(resolve(error.properties?.message ?? {}).type, 'string', `${where}: message`);
    assert.deepEqual(new Set(literals(error.properties?.code ?? {})), new Set(Object.keys(ERRORS)), `${where}: codes`);
  };

  it('when /openapi.json is fetched, then it is OpenAPI 3.x', () => {
    assert.match(doc.openapi, /^3\.\d+\.\d+$/);
    assert.ok(Object.keys(doc.paths).length > 0);
  });

  it('when the operations are listed, then every public one is there, each operationId once', () => {
    const ids = operations().map((o) => o.operation.operationId);
    for (const id of EXPECTED_OPERATIONS) assert.ok(ids.includes(id), `missing operationId ${id}; have ${ids.join(', ')}`);
    assert.ok(ids.every((id) => typeof id === 'string' && id.length > 0), 'an operation has no operationId');
    assert.equal(new Set(ids).size, ids.length, 'an operationId is used twice');
  });

  it('when /docs is opened (following any redirect), then it serves the HTML reference', async () => {
    let path = '/docs';
    let res = await h.http.request('GET', path);
    for (let hops = 0; res.status >= 300 && res.status < 400 && hops < 5; hops++) {
      const location = res.headers.location;
      assert.equal(typeof location, 'string', `redirect ${res.status} without a location`);
      path = new URL(location as string, `${h.url}${path}`).pathname;
      res = await h.http.request('GET', path);
    }
    assert.equal(res.status, 200, path);
    assert.match(String(res.headers['content-type']), /^text\/html/);
    assert.match(String(res.body), /<html/i);
  });

  it('when a mutating operation documents a non-2xx response, then its body is the error shape with every error code', () => {
    const mutating = operations().filter((o) => MUTATING.has(o.method));
    assert.ok(mutating.length >= 10, `only ${mutating.length} mutating operations`);
    for (const { path, method, operation } of mutating) {
      const failures = Object.keys(operation.responses).filter((status) => !/^2/.test(status));
      assert.ok(failures.length > 0, `${method.toUpperCase()} ${path} documents no failure`);
      for (const status of failures) {
        const content = operation.responses[status]!.content;
        assertErrorBody(content?.['application/json']?.schema, `${method.toUpperCase()} ${path} ${status}`);
      }
    }
  });

  it('when an operation needs a bearer token, then it says so and documents 401 and 403', () => {
    for (const { path, method, operation } of operations()) {
      if (!operation.security) continue;
      assert.deepEqual(operation.security, [{ bearer: [] }], `${method} ${path}`);
      assert.ok('401' in operation.responses && '403' in operation.responses, `${method.toUpperCase()} ${path} should document 401 and 403`);
    }
    const secured = operations().filter((o) => o.operation.security).map((o) => o.operation.operationId);
    for (const id of ['createMerchant', 'createProduct', 'createFlashSale', 'updateFlashSale', 'cancelFlashSale', 'addSaleStock', 'createOrder', 'cancelOrder', 'addCartItem', 'checkout', 'getOrder', 'listOrders', 'audit']) {
      assert.ok(secured.includes(id), `${id} should declare bearer security`);
    }
  });

  it('when an answer is described, then no part of it is a union: the serializer writes it without running Ajv', () => {
    // fast-json-stringify writes `anyOf`/`oneOf` by validating the value against each branch, on
    // every answer; `enum` and `nullable` cost nothing (see StringEnum and Nullable in schemas.ts).
    const unions = (schema: unknown, at: string): string[] => {
      if (typeof schema !== 'object' || schema === null) return [];
      const here = 'anyOf' in schema || 'oneOf' in schema ? [at] : [];
      return [...here, ...Object.entries(schema).flatMap(([key, value]) => unions(value, `${at}.${key}`))];
    };
    const found = operations().flatMap(({ path, method, operation }) =>
      Object.entries(operation.responses).flatMap(([status, response]) => unions(response, `${method.toUpperCase()} ${path} ${status}`)));
    assert.deepEqual(found, []);
  });
});
