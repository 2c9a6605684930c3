import { Type, type Static } from '@sinclair/typebox';

/** Order's events: producers type against these schemas, consumers check payloads with them (readPayload). */
export const OrderTopics = {
  created: 'order.created',
  cancelled: 'order.cancelled',
  paid: 'order.paid',
  expired: 'order.expired',
  /** A payment landed that must be given back (order closed, cancelled by an admin, or its sale cancelled). */
  refundRequested: 'order.refund_requested',
  /** Every order a cancelled sale left pending is closed (the merchant's summary can be written). */
  saleClosed: 'order.sale_closed',
  /** The merchant cancelled a line of a paid order: the line's amount is refunded, its units restocked or written off. */
  lineCancelled: 'order.line_cancelled',
  /** Every line not cancelled has shipped. */
  fulfilled: 'order.fulfilled',
  /** Internal: the payment window of an order has elapsed (delayed message to itself). */
  deadline: 'order.deadline',
} as const;

export const OrderCreated = Type.Object({
  orderId: Type.String(),
  userId: Type.String(),
  saleId: Type.String(),
  totalAmount: Type.Integer(),
  currency: Type.String(),
  expiresAt: Type.String(),
  items: Type.Array(Type.Object({ saleItemId: Type.String(), holdId: Type.String(), quantity: Type.Integer(), unitPrice: Type.Integer() })),
});
export type OrderCreated = Static<typeof OrderCreated>;

export const OrderCancelled = Type.Object({ orderId: Type.String(), userId: Type.String(), reason: Type.String() });
export type OrderCancelled = Static<typeof OrderCancelled>;

export const OrderPaid = Type.Object({ orderId: Type.String(), userId: Type.String(), paymentId: Type.String() });
export type OrderPaid = Static<typeof OrderPaid>;

export const OrderExpired = Type.Object({ orderId: Type.String(), userId: Type.String() });
export type OrderExpired = Static<typeof OrderExpired>;

/** `amount` (minor units) is refunded once, keyed by the order and the line's `holdId` (a cart may hold one item twice). */
export const OrderLineCancelled = Type.Object({
  orderId: Type.String(), userId: Type.String(), saleItemId: Type.String(), holdId: Type.String(), quantity: Type.Integer(), amount: Type.Integer(), currency: Type.String(), restocked: Type.Boolean(),
});
export type OrderLineCancelled = Static<typeof OrderLineCancelled>;

/** `byShipmentId`: the shipment whose leaving fulfilled the order; absent when cancelling its last pending lines did. */
export const OrderFulfilled = Type.Object({ orderId: Type.String(), userId: Type.String(), byShipmentId: Type.Optional(Type.String()) });
export type OrderFulfilled = Static<typeof OrderFulfilled>;

/** `userId` is empty when the order itself is unknown (a capture for no order of ours). */
export const OrderRefundRequested = Type.Object({
  orderId: Type.String(), userId: Type.String(), reason: Type.Union([Type.Literal('order_closed'), Type.Literal('admin_cancelled'), Type.Literal('sale_cancelled')]),
});
export type OrderRefundRequested = Static<typeof OrderRefundRequested>;

/** `recovery` is no longer sent (the sweeper does that check); still read: such messages may wait in an outbox or queue from an earlier version. */
export const OrderDeadline = Type.Object({ orderId: Type.String(), check: Type.Union([Type.Literal('close'), Type.Literal('recovery')]) });
export type OrderDeadline = Static<typeof OrderDeadline>;

export const OrderSaleClosed = Type.Object({ saleId: Type.String(), cancelled: Type.Integer(), refunded: Type.Integer() });
export type OrderSaleClosed = Static<typeof OrderSaleClosed>;
