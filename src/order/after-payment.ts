import type { Tx } from '../platform/database/index.ts';
import { AppError } from '../platform/errors.ts';
import { OrderTopics, type OrderCancelled, type OrderFulfilled, type OrderLineCancelled } from './contracts.ts';
import type { OrderContext } from './context.ts';
import { loadOrders, type Order, type OrderRow } from './model.ts';
import * as sql from './sql.ts';

/** What cancelling lines did: the lines cancelled now (none if they already were), and the order after it. */
export interface CancelledLines {
  order: Order;
  lines: Array<{ saleItemId: string; quantity: number; amount: number }>;
}

/**
 * A paid order after payment, in the caller's (fulfillment's) transaction: locked, its lines
 * cancelled by the merchant (each refunded and its units restocked or written off), fulfilled
 * once every line not cancelled has shipped.
 */
export function createAfterPayment({ clock, inventory, emit }: OrderContext) {
  return {
    /** Locks the order row (FOR UPDATE): fulfillment's changes and an admin cancel are serialized on it. */
    async lockOrder(tx: Tx, orderId: string): Promise<Order | undefined> {
      const [row] = await tx.query<OrderRow>(sql.lockOrder, [orderId]);
      return row ? (await loadOrders(tx, [row]))[0] : undefined;
    },

    /**
     * Cancels lines of a PAID order: each line's amount is refunded (`order.line_cancelled`, which
     * payment refunds once per line), its units go back on sale or are written off. When no line is
     * left, the order is CANCELLED (`merchant_cancelled`). Lines already cancelled are skipped.
     */
    async cancelLines(tx: Tx, orderId: string, saleItemIds: readonly string[], restock: boolean): Promise<CancelledLines> {
      const [row] = await tx.query<OrderRow>(sql.lockOrder, [orderId]);
      if (!row) throw new AppError('not_found', 'No such order.');
      if (row.status !== 'PAID') throw new AppError('invalid_state', `The order is ${row.status}; only lines of a PAID order can be cancelled.`);
      const now = clock.now();
      const cancelled = await tx.query<{ sale_item_id: string; hold_id: string; quantity: number; unit_price: number }>(sql.cancelLines, [orderId, saleItemIds, now]);
      if (cancelled.length > 0) {
        await inventory.unsellHolds(tx, cancelled.map((l) => l.hold_id), restock);
        await emit(tx, cancelled.map((l) => ({
          topic: OrderTopics.lineCancelled,
          payload: {
            orderId, userId: row.user_id, saleItemId: l.sale_item_id, holdId: l.hold_id, quantity: l.quantity, amount: l.quantity * Number(l.unit_price), currency: row.currency, restocked: restock,
          } satisfies OrderLineCancelled,
        })));
        const [{ n }] = (await tx.query<{ n: number }>(sql.activeLines, [orderId])) as [{ n: number }];
        if (n === 0) {
          await tx.query(sql.markCancelled, [orderId, 'merchant_cancelled', now, 'PAID']);
          await emit(tx, [{ topic: OrderTopics.cancelled, payload: { orderId, userId: row.user_id, reason: 'merchant_cancelled' } satisfies OrderCancelled }]);
        }
      }
      const [after] = await loadOrders(tx, await tx.query<OrderRow>(sql.orderById, [orderId]));
      return { order: after!, lines: cancelled.map((l) => ({ saleItemId: l.sale_item_id, quantity: l.quantity, amount: l.quantity * Number(l.unit_price) })) };
    },

    /** The lines have shipped (in fulfillment's transaction): the order can no longer be cancelled whole. */
    async markLinesShipped(tx: Tx, orderId: string, saleItemIds: readonly string[]): Promise<void> {
      await tx.query(sql.markLinesShipped, [orderId, saleItemIds, clock.now()]);
    },

    /** PAID → FULFILLED (every line not cancelled has shipped); false if the order was not PAID. */
    async markFulfilled(tx: Tx, orderId: string, byShipmentId?: string): Promise<boolean> {
      const [row] = await tx.query<{ user_id: string }>(sql.markFulfilled, [orderId, clock.now()]);
      if (!row) return false;
      await emit(tx, [{ topic: OrderTopics.fulfilled, payload: { orderId, userId: row.user_id, ...(byShipmentId ? { byShipmentId } : {}) } satisfies OrderFulfilled }]);
      return true;
    },
  };
}
