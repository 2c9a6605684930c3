import { Type } from '@sinclair/typebox';
import type { App, Guards, Hook } from '../platform/http/server.ts';
import { bearer, Currency, errors, IdParams, Money, Page, Timestamp, Uuid } from '../platform/http/schemas.ts';
import type { Metrics } from '../platform/metrics.ts';
import { ERRORS, isAppError } from '../platform/errors.ts';
import type { Shipment } from '../fulfillment/contracts.ts';
import { CartItemSchema, OrderSchema, OrderStatusSchema, type Orders } from './index.ts';
import { OrderWithTracking, registerOrderLiveRoute, type OrderLiveOptions } from './live.ts';

const Quantity = Type.Integer({ minimum: 1, maximum: 100, description: 'A positive whole number of units.' });
const Line = Type.Object({ saleItemId: Uuid, quantity: Quantity }, { additionalProperties: false });
const OrderBody = OrderSchema;
const CartItemBody = CartItemSchema;
/** Runs a purchase attempt, counting its outcome. */
type Counted = <T>(kind: 'order' | 'cart', saleItemId: string, run: () => Promise<T>) => Promise<T>;

/** The sold-out answer, serialized once: the same body the error handler writes for `sold_out`. */
const SOLD_OUT_BODY = JSON.stringify({ error: { code: 'sold_out', message: ERRORS.sold_out.message } });

const IdempotencyHeader = Type.Object({ 'idempotency-key': Type.Optional(Type.String({ minLength: 1, maxLength: 255 })) });

export interface OrderRouteDeps {
  orders: Orders;
  guards: Guards;
  metrics: Metrics;
  /** An order's shipments (fulfillment's): the tracking a buyer sees on their own order. */
  shipmentsOf: (orderId: string) => Promise<Shipment[]>;
  /** Told every purchase attempt's (first) item and outcome: the dashboard's per-sale rates. */
  onAttempt?: (saleItemId: string, outcome: string) => void;
  /** The live order stream's pace and bound. */
  live: OrderLiveOptions;
}

export function registerOrderRoutes(app: App, { orders, guards, metrics, shipmentsOf, onAttempt = () => {}, live }: OrderRouteDeps): void {
  const buyer = [...guards.auth('buyer'), guards.idempotency];

  /** Counts every purchase attempt by outcome, whatever the outcome. */
  async function counted<T>(kind: 'order' | 'cart', saleItemId: string, run: () => Promise<T>): Promise<T> {
    try {
      const result = await run();
      metrics.purchaseAttempts.inc({ kind, outcome: 'accepted' });
      onAttempt(saleItemId, 'accepted');
      return result;
    } catch (error) {
      const outcome = isAppError(error) ? error.code : 'internal';
      metrics.purchaseAttempts.inc({ kind, outcome });
      onAttempt(saleItemId, outcome);
      throw error;
    }
  }

  // Before the token is verified and the body validated: "sold out" does not depend on who asks, and
  // after a sell-out most of a flash sale's requests end here, so they cost neither an HMAC nor a
  // schema check. A request with no credentials at all still gets its 401, and one the route would
  // refuse as invalid falls through to get its 422. Not with an Idempotency-Key: a retried request
  // must get its stored answer, which may be a 201. The answer is written ready-made: no error
  // object, no error handler, no serializer.
  const soldOutFirst: Hook = async (request, reply) => {
    if (request.headers['idempotency-key'] !== undefined || request.headers.authorization === undefined) return;
    // The flag first, on the unvalidated body: the accepted path must not pay for validating twice.
    const items = saleItemsOf(request.body);
    if (!items || !orders.anySoldOut(items)) return;
    if (request.getValidationFunction('body')?.(request.body) !== true) return;
    metrics.purchaseAttempts.inc({ kind: 'order', outcome: 'sold_out' });
    onAttempt(items[0]!.saleItemId, 'sold_out');
    return reply.code(409).type('application/json; charset=utf-8').send(SOLD_OUT_BODY);
  };

  app.post('/v1/orders', {
    preValidation: soldOutFirst,
    preHandler: [guards.authenticate('buyer'), guards.perUserLimit, guards.idempotency],
    config: { idempotency: 'atomic' },
    schema: {
      operationId: 'createOrder', tags: ['orders'], summary: 'Buy: hold stock and create an order awaiting payment', security: bearer,
      description: '201 only once the order is durable. 409 `sold_out`, `limit_exceeded`, `sale_not_active`; 429/503 with Retry-After under load.',
      headers: IdempotencyHeader,
      body: Type.Object({ items: Type.Array(Line, { minItems: 1, maxItems: 20 }) }, { additionalProperties: false }),
      response: { 201: OrderBody, ...errors(401, 403, 409, 422, 429, 503) },
    },
  }, async (request, reply) =>
    reply.code(201).send(await counted('order', request.body.items[0]!.saleItemId, () => orders.placeOrder(request.principal!.userId, request.body.items, request.idempotencyClaim))));

  app.get('/v1/orders', {
    preHandler: guards.auth('buyer'),
    schema: {
      operationId: 'listOrders', tags: ['orders'], summary: 'Your orders, newest first', security: bearer,
      querystring: Type.Composite([Page, Type.Object({ status: Type.Optional(OrderStatusSchema) })], { additionalProperties: false }),
      response: { 200: Type.Object({ orders: Type.Array(OrderBody) }), ...errors(401, 403, 422) },
    },
  }, async (request) => ({ orders: await orders.listOrders(request.principal!.userId, request.query as Parameters<Orders['listOrders']>[1]) }));

  app.get('/v1/orders/:id', {
    preHandler: guards.auth('buyer'),
    schema: {
      operationId: 'getOrder', tags: ['orders'], summary: 'One of your orders, with its tracking', security: bearer, params: IdParams,
      response: { 200: OrderWithTracking, ...errors(401, 403, 404, 422) },
    },
  }, async (request) => {
    const order = await orders.getOrder(request.principal!.userId, request.params.id);
    return { ...order, shipments: await shipmentsOf(order.id) };
  });

  app.post('/v1/orders/:id/cancel', {
    preHandler: buyer,
    config: { idempotency: 'store' },
    schema: {
      operationId: 'cancelOrder', tags: ['orders'], summary: 'Cancel an order awaiting payment; its stock goes back on sale', security: bearer,
      description: 'The provider\'s payment intent is cancelled first, so no money can arrive for the cancelled order; if the buyer had already paid, 409 `invalid_state` and the order becomes PAID. '
        + 'Cancelling an order you already cancelled answers 200 with it (a retry after a lost answer). 503 `payment_unavailable` when the provider cannot be asked.',
      params: IdParams, response: { 200: OrderBody, ...errors(401, 403, 404, 409, 422, 503) },
    },
  }, async (request) => orders.cancelOrder(request.principal!.userId, request.params.id));

  registerOrderLiveRoute(app, { orders, guards, shipmentsOf, options: live });
  registerCartRoutes(app, { orders, guards, buyer, counted });
  registerAdminOrderRoutes(app, orders, guards);
}

/** Cart-hold sales: add to cart (a purchase attempt like an order), list, give back, check out. */
function registerCartRoutes(app: App, { orders, guards, buyer, counted }: { orders: Orders; guards: Guards; buyer: Hook[]; counted: Counted }): void {
  app.post('/v1/cart/items', {
    preHandler: buyer,
    config: { idempotency: 'atomic' },
    schema: {
      operationId: 'addCartItem', tags: ['cart'], summary: 'Hold stock in your cart (sales that hold on add-to-cart)', security: bearer,
      headers: IdempotencyHeader, body: Line, response: { 201: CartItemBody, ...errors(401, 403, 409, 422, 429, 503) },
    },
  }, async (request, reply) =>
    reply.code(201).send(await counted('cart', request.body.saleItemId, () => orders.addCartItem(request.principal!.userId, request.body, request.idempotencyClaim))));

  app.get('/v1/cart', {
    preHandler: guards.auth('buyer'),
    schema: { operationId: 'getCart', tags: ['cart'], summary: 'Your cart holds', security: bearer, response: { 200: Type.Object({ items: Type.Array(CartItemBody) }), ...errors(401, 403) } },
  }, async (request) => ({ items: await orders.getCart(request.principal!.userId) }));

  app.delete('/v1/cart/items/:holdId', {
    preHandler: guards.auth('buyer'),
    schema: {
      operationId: 'removeCartItem', tags: ['cart'], summary: 'Give a cart hold back to the sale', security: bearer,
      params: Type.Object({ holdId: Uuid }), response: { 204: Type.Null(), ...errors(401, 403, 404, 422) },
    },
  }, async (request, reply) => {
    await orders.removeCartItem(request.principal!.userId, request.params.holdId);
    return reply.code(204).send(null);
  });

  app.post('/v1/checkout', {
    preHandler: buyer,
    config: { idempotency: 'store' },
    schema: {
      operationId: 'checkout', tags: ['cart'], summary: 'Turn your cart holds into orders (one per sale); hold expiry is kept', security: bearer,
      response: { 201: Type.Object({ orders: Type.Array(OrderBody) }), ...errors(401, 403, 409, 422) },
    },
  }, async (request, reply) => reply.code(201).send({ orders: await orders.checkout(request.principal!.userId) }));
}

/** An admin cancels any order (a paid one is refunded). */
function registerAdminOrderRoutes(app: App, orders: Orders, guards: Guards): void {
  app.post('/v1/admin/orders/:id/cancel', {
    // The body is optional: no body means the defaults (Fastify would otherwise validate `undefined`);
    // a body of JSON `null` is a body, and not an object.
    preValidation: async (request) => {
      if (request.body === undefined) request.body = {};
    },
    preHandler: [...guards.auth('admin'), guards.idempotency],
    config: { idempotency: 'store' },
    schema: {
      operationId: 'adminCancelOrder', tags: ['admin'], summary: 'Cancel any order (admin): a paid one is refunded', security: bearer,
      description: 'Pending: the provider\'s intent cancelled, stock released. Paid: refund requested, and the units go back on sale (`restock: true`, default) or are written off. '
        + '409 `order_shipped` once a line has shipped (FULFILLED, or shipped in part): the shop cancels the lines not yet shipped (cancelOrderLine) instead.',
      params: IdParams,
      body: Type.Object({ restock: Type.Optional(Type.Boolean({ default: true })) }, { additionalProperties: false, description: 'Optional; an empty or missing body restocks.' }),
      response: { 200: OrderBody, ...errors(401, 403, 404, 409, 422, 503) },
    },
  }, async (request) => orders.adminCancel(request.params.id, request.body.restock ?? true));
}

/** The lines of a body not validated yet, if it has the shape of an order's; undefined otherwise. */
function saleItemsOf(body: unknown): Array<{ saleItemId: string }> | undefined {
  const items = (body as { items?: unknown } | null | undefined)?.items;
  if (!Array.isArray(items) || items.length === 0) return undefined;
  return items.every((item) => typeof (item as { saleItemId?: unknown } | null)?.saleItemId === 'string') ? items : undefined;
}
