import { Type, type Static } from '@sinclair/typebox';
import { Currency, Money, Nullable, StringEnum, Timestamp, Uuid } from '../platform/http/schemas.ts';
import type { Queryable } from '../platform/database/index.ts';
import type { OrderCreated } from './contracts.ts';
import * as sql from './sql.ts';

/** Every status an order can be in (the saga: docs/architecture.md, "The order saga"). */
export const ORDER_STATUSES = ['PENDING_PAYMENT', 'PAID', 'FULFILLED', 'CANCELLED', 'EXPIRED'] as const;
export const OrderStatusSchema = StringEnum(ORDER_STATUSES);
export type OrderStatus = (typeof ORDER_STATUSES)[number];

/** `cancelledAt`: the merchant cancelled the line after payment (refunded, units restocked or written off). */
export const OrderItemSchema = Type.Object({ saleItemId: Uuid, productId: Uuid, holdId: Uuid, quantity: Type.Integer(), unitPrice: Money, cancelledAt: Nullable(Timestamp) });
export type OrderItem = Static<typeof OrderItemSchema>;

/** The one order shape: the use cases type against it and the HTTP routes answer with it. */
export const OrderSchema = Type.Object({
  id: Uuid, userId: Uuid, saleId: Uuid, status: OrderStatusSchema, totalAmount: Money, currency: Currency,
  createdAt: Timestamp, expiresAt: Timestamp, updatedAt: Timestamp, closedReason: Nullable(Type.String()),
  items: Type.Array(OrderItemSchema),
});
export type Order = Static<typeof OrderSchema>;

/** What changes when an order's status does: how the live route tells a changed order (records.versions). */
export const orderVersion = (status: string, updatedAt: Date | string): string => `${status} ${new Date(updatedAt).toISOString()}`;

export const CartItemSchema = Type.Object({
  holdId: Uuid, saleId: Uuid, saleItemId: Uuid, productId: Uuid, quantity: Type.Integer(), unitPrice: Money, currency: Currency, expiresAt: Timestamp,
});
export type CartItem = Static<typeof CartItemSchema>;

export interface LineInput {
  saleItemId: string;
  quantity: number;
}

/**
 * What a payment must match: an order's status and what it costs (payment and the audit read it);
 * `refundedAmount` is what its cancelled lines cost (refunded in part, the capture still equals the total).
 */
export interface OrderTerms { status: OrderStatus; totalAmount: number; currency: string; refundedAmount: number }

export interface OrderRow { id: string; user_id: string; sale_id: string; status: OrderStatus; total_amount: number; currency: string; created_at: Date; expires_at: Date; updated_at: Date; closed_reason: string | null }
interface ItemRow { order_id: string; sale_item_id: string; hold_id: string; product_id: string; quantity: number; unit_price: number; cancelled_at: Date | null }

/** Orders with their lines, in the rows' order. */
export async function loadOrders(q: Queryable, rows: readonly OrderRow[]): Promise<Order[]> {
  if (rows.length === 0) return [];
  const itemRows = await q.query<ItemRow>(sql.itemsOfOrders, [rows.map((r) => r.id)]);
  return rows.map((r) => toOrder(r, itemRows.filter((i) => i.order_id === r.id)));
}

export function termsOf(row: Pick<OrderRow, 'status' | 'total_amount' | 'currency'> & { refunded_amount: number | string }): OrderTerms {
  return { status: row.status, totalAmount: Number(row.total_amount), currency: row.currency, refundedAmount: Number(row.refunded_amount) };
}

export function orderCreatedEvent(o: Order): OrderCreated {
  return {
    orderId: o.id, userId: o.userId, saleId: o.saleId, totalAmount: o.totalAmount, currency: o.currency, expiresAt: o.expiresAt.toISOString(),
    items: o.items.map((i) => ({ saleItemId: i.saleItemId, holdId: i.holdId, quantity: i.quantity, unitPrice: i.unitPrice })),
  };
}

function toOrder(r: OrderRow, items: ItemRow[]): Order {
  return {
    id: r.id, userId: r.user_id, saleId: r.sale_id, status: r.status, totalAmount: r.total_amount, currency: r.currency,
    createdAt: r.created_at, expiresAt: r.expires_at, updatedAt: r.updated_at, closedReason: r.closed_reason,
    items: items.map((i) => ({ saleItemId: i.sale_item_id, productId: i.product_id, holdId: i.hold_id, quantity: i.quantity, unitPrice: i.unit_price, cancelledAt: i.cancelled_at })),
  };
}

/** A sale's orders by outcome (the merchant's end-of-sale summary). Revenue in the sale's minor units. */
export interface SaleSummary {
  orders: number;
  paid: number;
  expired: number;
  cancelled: number;
  pending: number;
  unitsSold: number;
  revenue: number;
}
