import { Type } from '@sinclair/typebox';
import { AppError } from '../platform/errors.ts';
import type { App, Guards } from '../platform/http/server.ts';
import { bearer, Currency, errors, IdParams, Money, Nullable, Page, StringEnum, Text, Timestamp, TimestampInput, Uuid } from '../platform/http/schemas.ts';
import type { Accounts } from '../accounts/index.ts';
import type { Inventory } from '../inventory/index.ts';
import type { Catalog, FlashSale } from './index.ts';
import { registerLiveRoutes, type LiveOptions } from './live.ts';

const ProductBody = Type.Object({ id: Uuid, shopId: Uuid, name: Type.String(), description: Type.String(), price: Money, currency: Currency, createdAt: Timestamp });
const SaleItemBody = Type.Object({
  id: Uuid, productId: Uuid, productName: Type.String(), flashPrice: Money, stock: Type.Integer(), perUserLimit: Type.Integer(),
  remaining: Type.Integer({ description: 'Units still on sale, live.' }),
});
const SaleBody = Type.Object({
  id: Uuid, shopId: Uuid, name: Type.String(), startsAt: Timestamp, endsAt: Timestamp, paymentWindowS: Type.Integer(),
  holdMode: StringEnum(['order', 'cart']), currency: Currency,
  status: StringEnum(['scheduled', 'active', 'ended', 'cancelled']), items: Type.Array(SaleItemBody),
  cancelledAt: Nullable(Timestamp, { description: 'When the merchant cancelled the sale; null if not cancelled.' }),
  version: Type.Integer({ description: 'Bumped by every change to the sale.' }),
});

const SaleItemInput = Type.Object({
  productId: Uuid,
  flashPrice: Money,
  stock: Type.Integer({ minimum: 1, maximum: 10_000_000 }),
  perUserLimit: Type.Integer({ minimum: 1, maximum: 1000, default: 1 }),
}, { additionalProperties: false });

export interface CatalogRouteDeps {
  catalog: Catalog;
  inventory: Inventory;
  accounts: Accounts;
  guards: Guards;
  now: () => Date;
  live: LiveOptions;
}

export function registerCatalogRoutes(app: App, { catalog, inventory, accounts, guards, now, live }: CatalogRouteDeps): void {
  registerLiveRoutes(app, { catalog, inventory, now, options: live });
  async function myShop(userId: string): Promise<string> {
    const shop = await accounts.shopOf(userId);
    if (!shop) throw new AppError('forbidden', 'This merchant has no shop.');
    return shop.id;
  }

  async function present(sale: FlashSale) {
    const items = await Promise.all(sale.items.map(async (i) => ({ ...i, remaining: (await inventory.available(i.id)) ?? 0 })));
    return { ...sale, status: catalog.statusOf(sale), items };
  }

  app.post('/v1/products', {
    preHandler: [...guards.auth('merchant'), guards.idempotency],
    config: { idempotency: 'store' },
    schema: {
      operationId: 'createProduct', tags: ['catalog'], summary: 'Create a product in your shop (merchant)', security: bearer,
      body: Type.Object({ name: Text({ minLength: 1, maxLength: 200 }), description: Type.Optional(Text({ maxLength: 5000 })), price: Money, currency: Currency }, { additionalProperties: false }),
      response: { 201: ProductBody, ...errors(401, 403, 422) },
    },
  }, async (request, reply) => reply.code(201).send(await catalog.createProduct(await myShop(request.principal!.userId), request.body)));

  app.get('/v1/products', {
    schema: {
      operationId: 'listProducts', tags: ['catalog'], summary: 'List products, newest first',
      querystring: Type.Composite([Page, Type.Object({ shopId: Type.Optional(Uuid) })], { additionalProperties: false }),
      response: { 200: Type.Object({ products: Type.Array(ProductBody) }), ...errors(422) },
    },
  }, async (request) => ({ products: await catalog.listProducts(request.query) }));

  app.post('/v1/flash-sales', {
    preHandler: [...guards.auth('merchant'), guards.idempotency],
    config: { idempotency: 'store' },
    schema: {
      operationId: 'createFlashSale', tags: ['catalog'], summary: 'Schedule a flash sale of your products (merchant)', security: bearer,
      body: Type.Object({
        name: Text({ minLength: 1, maxLength: 200 }),
        startsAt: TimestampInput,
        endsAt: TimestampInput,
        paymentWindowS: Type.Integer({ minimum: 1, maximum: 7 * 86400, default: 900, description: 'Seconds a buyer has to pay once stock is held.' }),
        holdMode: Type.Union([Type.Literal('order'), Type.Literal('cart')], { default: 'order', description: 'Hold stock when the order is placed, or when the item is added to the cart.' }),
        items: Type.Array(SaleItemInput, { minItems: 1, maxItems: 200 }),
      }, { additionalProperties: false }),
      response: { 201: SaleBody, ...errors(401, 403, 422) },
    },
  }, async (request, reply) => {
    const body = request.body;
    const sale = await catalog.createFlashSale(await myShop(request.principal!.userId), { ...body, startsAt: new Date(body.startsAt), endsAt: new Date(body.endsAt) });
    return reply.code(201).send(await present(sale));
  });

  app.get('/v1/flash-sales', {
    schema: {
      operationId: 'listFlashSales', tags: ['catalog'], summary: 'List flash sales with live remaining stock',
      querystring: Type.Object({ shopId: Type.Optional(Uuid), status: Type.Optional(Type.Union([Type.Literal('scheduled'), Type.Literal('active'), Type.Literal('ended'), Type.Literal('cancelled')])), limit: Type.Integer({ minimum: 1, maximum: 100, default: 20 }) }, { additionalProperties: false }),
      response: { 200: Type.Object({ sales: Type.Array(SaleBody) }), ...errors(422) },
    },
  }, async (request) => ({ sales: await Promise.all(catalog.listFlashSales(request.query).slice(0, request.query.limit).map(present)) }));

  app.get('/v1/flash-sales/:id', {
    schema: {
      operationId: 'getFlashSale', tags: ['catalog'], summary: 'Read one flash sale with live remaining stock',
      params: IdParams, response: { 200: SaleBody, ...errors(404, 422) },
    },
  }, async (request) => {
    const sale = await catalog.findFlashSale(request.params.id.toLowerCase());
    if (!sale) throw new AppError('not_found', 'No such flash sale.');
    return present(sale);
  });

  app.patch('/v1/flash-sales/:id', {
    preHandler: [...guards.auth('merchant'), guards.idempotency],
    config: { idempotency: 'store' },
    schema: {
      operationId: 'updateFlashSale', tags: ['catalog'], summary: 'Edit your scheduled flash sale before it starts (merchant)', security: bearer,
      description: 'Any of name, times, payment window and items; `items` is the whole new list, matched to the current one by product '
        + '(kept items take the new price, stock and limit; new products are added; missing ones are taken out). '
        + '409 `sale_started` once the sale has started, `sale_cancelled`, `sale_ended`; 404 for another shop\'s sale.',
      params: IdParams,
      body: Type.Object({
        name: Type.Optional(Text({ minLength: 1, maxLength: 200 })),
        startsAt: Type.Optional(TimestampInput),
        endsAt: Type.Optional(TimestampInput),
        paymentWindowS: Type.Optional(Type.Integer({ minimum: 1, maximum: 7 * 86400 })),
        items: Type.Optional(Type.Array(SaleItemInput, { minItems: 1, maxItems: 200 })),
      }, { additionalProperties: false, minProperties: 1 }),
      response: { 200: SaleBody, ...errors(401, 403, 404, 409, 422) },
    },
  }, async (request) => {
    const { startsAt, endsAt, ...rest } = request.body;
    const changes = { ...rest, ...(startsAt ? { startsAt: new Date(startsAt) } : {}), ...(endsAt ? { endsAt: new Date(endsAt) } : {}) };
    return present(await catalog.updateFlashSale(await myShop(request.principal!.userId), request.params.id, changes));
  });

  app.post('/v1/flash-sales/:id/cancel', {
    preHandler: [...guards.auth('merchant'), guards.idempotency],
    config: { idempotency: 'store' },
    schema: {
      operationId: 'cancelFlashSale', tags: ['catalog'], summary: 'Cancel your flash sale, before or during it (merchant)', security: bearer,
      description: 'Nobody is admitted from the moment it answers; cart holds are released at once. Every pending order is then closed '
        + '(`closedReason: sale_cancelled`): its payment voided at the provider, or refunded if it was taken meanwhile; the buyers are notified. '
        + 'Orders paid before the cancel stand. Cancelling again answers the cancelled sale. 409 `sale_ended`; 404 for another shop\'s sale.',
      params: IdParams,
      response: { 200: SaleBody, ...errors(401, 403, 404, 409, 422) },
    },
  }, async (request) => present(await catalog.cancelFlashSale(await myShop(request.principal!.userId), request.params.id)));

  app.post('/v1/flash-sales/:id/items/:itemId/stock', {
    preHandler: [...guards.auth('merchant'), guards.idempotency],
    config: { idempotency: 'store' },
    schema: {
      operationId: 'addSaleStock', tags: ['catalog'], summary: 'Add units to an item of your scheduled or running flash sale (merchant)', security: bearer,
      description: 'The units are on sale at once in every API process; a sold-out item reopens. Send an Idempotency-Key: a retry without one adds the units twice. '
        + '409 `sale_cancelled`, `sale_ended`; 404 for another shop\'s sale or an item not in it.',
      params: Type.Object({ id: Uuid, itemId: Uuid }),
      body: Type.Object({ quantity: Type.Integer({ minimum: 1, maximum: 10_000_000 }) }, { additionalProperties: false }),
      response: { 200: SaleBody, ...errors(401, 403, 404, 409, 422) },
    },
  }, async (request) => present(await catalog.addSaleStock(await myShop(request.principal!.userId), request.params.id, request.params.itemId, request.body.quantity)));
}
