import { Type } from '@sinclair/typebox';
import type { App, Guards } from '../platform/http/server.ts';
import { bearer, Currency, errors, IdParams, Page, StringEnum, Text, TimestampInput, Uuid } from '../platform/http/schemas.ts';
import { ORDER_STATUSES, OrderSchema, type OrderStatus } from '../order/index.ts';
import { EXPORT_MAX_ORDERS, ShipmentSchema, type Fulfillment } from './index.ts';

const Filter = Type.Object({
  saleId: Type.Optional(Uuid),
  saleItemId: Type.Optional(Uuid),
  status: Type.Optional(StringEnum(ORDER_STATUSES)),
  from: Type.Optional(TimestampInput),
  to: Type.Optional(TimestampInput),
}, { additionalProperties: false });

const ShopOrdersBody = Type.Object({
  orders: Type.Array(OrderSchema),
  total: Type.Integer({ description: 'Orders matching the filter, over every page.' }),
  totals: Type.Array(Type.Object({ currency: Currency, units: Type.Integer(), amount: Type.Integer() }), {
    description: 'Per currency, over every page: units and minor units of the matching lines not cancelled (only the item\'s lines with saleItemId).',
  }),
});

const Carrier = Text({ minLength: 1, maxLength: 100 });
const TrackingNumber = Text({ minLength: 1, maxLength: 100 });

interface FilterQuery { saleId?: string; saleItemId?: string; status?: OrderStatus; from?: string; to?: string }
const filterOf = (q: FilterQuery) => ({
  saleId: q.saleId, saleItemId: q.saleItemId, status: q.status, from: q.from ? new Date(q.from) : undefined, to: q.to ? new Date(q.to) : undefined,
});

/** The merchant's side of an order after payment: its orders (list, CSV), shipping, delivering, cancelling a line. */
export function registerFulfillmentRoutes(app: App, { fulfillment, guards }: { fulfillment: Fulfillment; guards: Guards }): void {
  const merchant = guards.auth('merchant');
  const mutating = [...merchant, guards.idempotency];

  app.get('/v1/shop/orders', {
    preHandler: merchant,
    schema: {
      operationId: 'listShopOrders', tags: ['shop'], summary: 'Your shop\'s orders, newest first, filtered, with totals (merchant)', security: bearer,
      description: 'Filter by sale, item (orders with that item), status and creation time (`from` inclusive, `to` exclusive). A sale of another shop matches nothing.',
      querystring: Type.Composite([Page, Filter], { additionalProperties: false }),
      response: { 200: ShopOrdersBody, ...errors(401, 403, 422) },
    },
  }, async (request) => {
    const q = request.query as FilterQuery & { limit: number; offset: number };
    return fulfillment.listShopOrders(request.principal!.userId, { ...filterOf(q), limit: q.limit, offset: q.offset });
  });

  app.get('/v1/shop/orders/export', {
    preHandler: merchant,
    schema: {
      operationId: 'exportShopOrders', tags: ['shop'], summary: 'Your shop\'s orders as CSV, one row per line (merchant)', security: bearer,
      description: `The filters of listShopOrders; at most ${EXPORT_MAX_ORDERS} orders, newest first. Columns: order_id, created_at, status, buyer_id, sale_id, sale_item_id, product_id, product_name, quantity, unit_price, line_amount, currency, line_status, shipment_id, shipment_status, carrier, tracking_number.`,
      querystring: Filter,
      response: { 200: { description: 'RFC 4180 CSV with a header row.', content: { 'text/csv': { schema: Type.String() } } }, ...errors(401, 403, 422) },
    },
  }, async (request, reply) => {
    const csv = await fulfillment.exportShopOrders(request.principal!.userId, filterOf(request.query as FilterQuery));
    return reply.type('text/csv; charset=utf-8').header('content-disposition', 'attachment; filename="orders.csv"').send(csv);
  });

  app.post('/v1/shop/orders/:id/shipments', {
    preHandler: mutating,
    config: { idempotency: 'store' },
    schema: {
      operationId: 'createShipment', tags: ['shop'], summary: 'Ship lines of a paid order with a carrier and tracking number (merchant)', security: bearer,
      description: 'Without `items`, every line still pending ships. Naming some lines is a partial shipment. The last pending line shipped makes the order FULFILLED. '
        + '404 for an order of another shop; 409 `invalid_state` for an order not PAID or a line already shipped or cancelled.',
      params: IdParams,
      body: Type.Object({ carrier: Carrier, trackingNumber: TrackingNumber, items: Type.Optional(Type.Array(Uuid, { minItems: 1, maxItems: 20 })) }, { additionalProperties: false }),
      response: { 201: ShipmentSchema, ...errors(401, 403, 404, 409, 422) },
    },
  }, async (request, reply) => {
    const { carrier, trackingNumber, items } = request.body;
    return reply.code(201).send(await fulfillment.createShipment(request.principal!.userId, request.params.id, { carrier, trackingNumber, saleItemIds: items }));
  });

  app.patch('/v1/shop/shipments/:id', {
    preHandler: mutating,
    config: { idempotency: 'store' },
    schema: {
      operationId: 'updateShipment', tags: ['shop'], summary: 'Mark a shipped shipment delivered (merchant)', security: bearer,
      description: 'Delivering a DELIVERED shipment again answers it unchanged. 409 `invalid_state` for one not shipped.',
      params: IdParams,
      body: Type.Object({ status: StringEnum(['DELIVERED']) }, { additionalProperties: false }),
      response: { 200: ShipmentSchema, ...errors(401, 403, 404, 409, 422) },
    },
  }, async (request) => fulfillment.markDelivered(request.principal!.userId, request.params.id));

  app.post('/v1/shop/orders/:id/lines/:saleItemId/cancel', {
    // The body is optional: no body means the defaults.
    preValidation: async (request) => {
      request.body ??= {};
    },
    preHandler: mutating,
    config: { idempotency: 'store' },
    schema: {
      operationId: 'cancelOrderLine', tags: ['shop'], summary: 'Cancel a line you cannot ship: refunded, units restocked or written off (merchant)', security: bearer,
      description: 'The line\'s amount is refunded through the provider (a refund in part). `restock: true` (default) puts the units back on sale; false writes them off. '
        + 'The last line cancelled cancels the order. 409 `invalid_state` for a line shipped or cancelled, or an order not PAID.',
      params: Type.Object({ id: Uuid, saleItemId: Uuid }),
      body: Type.Object({ restock: Type.Optional(Type.Boolean({ default: true })) }, { additionalProperties: false, description: 'Optional; an empty or missing body restocks.' }),
      response: { 200: OrderSchema, ...errors(401, 403, 404, 409, 422) },
    },
  }, async (request) => fulfillment.cancelOrderLine(request.principal!.userId, request.params.id, request.params.saleItemId, request.body.restock ?? true));
}
