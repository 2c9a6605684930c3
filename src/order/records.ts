import type { Clock } from '../platform/clock.ts';
import type { Database, Queryable, Tx } from '../platform/database/index.ts';
import { AppError } from '../platform/errors.ts';
import type { TraceCarrier } from '../platform/tracing/tracing.ts';
import { loadOrders, orderVersion, termsOf, type Order, type OrderRow, type OrderStatus, type OrderTerms } from './model.ts';
import * as sql from './sql.ts';

/** Reading orders: for buyers, for the payment side (what a payment must match) and for the audit. */
export interface OrderRecords {
  /** A buyer's own order; anyone else's id is indistinguishable from a missing one (404). */
  getOrder(userId: string, orderId: string): Promise<Order>;
  /** Each named order's status and last change (whoever's it is): what a live order stream compares. Missing ids are left out. */
  versions(orderIds: readonly string[]): Promise<Map<string, string>>;
  /** A buyer's orders, newest first. */
  listOrders(userId: string, filter: { status?: OrderStatus; limit: number; offset: number }): Promise<Order[]>;
  /** An order's status and what it costs (whoever's it is): what a provider's capture must match. */
  paymentTerms(q: Queryable, orderId: string): Promise<OrderTerms | undefined>;
  /**
   * In the caller's transaction: locks the order against closing (FOR SHARE) if it still awaits
   * payment and its window is open; false otherwise. A payment recorded under this lock is seen by
   * any close, which takes the row lock after it.
   */
  lockPendingForPayment(tx: Tx, orderId: string): Promise<boolean>;
  /** Every order's status and total, for the audit and the reconciliation. */
  terms(): Promise<Map<string, OrderTerms>>;
  /** The trace the order was placed in (none if tracing was off then): its payment and webhook join it. */
  traceOf(orderId: string): Promise<TraceCarrier | undefined>;
}

/** Built on the database alone, so the payment side can read orders without depending on the order component. */
export function createOrderRecords({ db, clock }: { db: Database; clock: Clock }): OrderRecords {
  return {
    async getOrder(userId, orderId) {
      const [order] = await loadOrders(db, await db.query<OrderRow>(sql.orderOfUser, [orderId, userId]));
      if (!order) throw new AppError('not_found', 'No such order.');
      return order;
    },

    async versions(orderIds) {
      if (orderIds.length === 0) return new Map();
      const rows = await db.query<{ id: string; status: string; updated_at: Date | string }>(sql.orderVersions, [orderIds]);
      return new Map(rows.map((r) => [r.id, orderVersion(r.status, r.updated_at)]));
    },

    async listOrders(userId, filter) {
      return loadOrders(db, await db.query<OrderRow>(sql.ordersOfUser, [userId, filter.status ?? null, filter.limit, filter.offset]));
    },

    async paymentTerms(q, orderId) {
      const [row] = await q.query<OrderRow & { refunded_amount: string }>(sql.orderTermsById, [orderId]);
      return row ? termsOf(row) : undefined;
    },

    async lockPendingForPayment(tx, orderId) {
      return (await tx.query(sql.lockPendingForPayment, [orderId, clock.now()])).length > 0;
    },

    async terms() {
      const rows = await db.query<Pick<OrderRow, 'id' | 'status' | 'total_amount' | 'currency'> & { refunded_amount: string }>(sql.allOrderTerms);
      return new Map(rows.map((r) => [r.id, termsOf(r)]));
    },

    async traceOf(orderId) {
      const [row] = await db.query<{ traceparent: string | null }>(sql.selectOrderTrace, [orderId]);
      return row?.traceparent ? { traceparent: row.traceparent } : undefined;
    },
  };
}
