import { AppError } from '../platform/errors.ts';
import type { Tx } from '../platform/database/index.ts';
import { OrderTopics, type OrderCancelled, type OrderRefundRequested } from './contracts.ts';
import type { OrderContext } from './context.ts';
import { closeUnpaid } from './closing.ts';
import { loadOrders, type Order, type OrderRow } from './model.ts';
import type { OrderRecords } from './records.ts';
import * as sql from './sql.ts';

/** Cancelling: the buyer's own pending order, or any order by an admin (a paid one is refunded). */
export function createCancel(ctx: OrderContext, records: OrderRecords) {
  const { db, clock, inventory, emit } = ctx;
  const cancelledByBuyer = (order: Order) => order.status === 'CANCELLED' && order.closedReason === 'buyer_cancelled';

  return {
    /**
     * The buyer cancels a pending order: its stock goes back on sale at once. The provider's intent
     * is cancelled first (a payment that already went through makes the order PAID instead), so no
     * money can arrive for a cancelled order. Cancelling again answers the cancelled order.
     */
    async cancelOrder(userId: string, orderId: string): Promise<Order> {
      const order = await records.getOrder(userId, orderId);
      if (cancelledByBuyer(order)) return order;
      if (order.status !== 'PENDING_PAYMENT') throw new AppError('invalid_state', `The order is ${order.status}; only a PENDING_PAYMENT order can be cancelled.`);
      const row = await closeUnpaid(ctx, order.id, async (tx) => {
        const [row] = await tx.query<OrderRow>(sql.cancelPending, [order.id, userId, 'buyer_cancelled', clock.now()]);
        if (!row) return undefined;
        await inventory.releaseOrder(tx, order.id, 'cancelled');
        await emit(tx, [{ topic: OrderTopics.cancelled, payload: { orderId: order.id, userId, reason: 'buyer_cancelled' } satisfies OrderCancelled }]);
        return row;
      });
      if (row === 'paid' || !row) {
        const current = await records.getOrder(userId, order.id);
        if (cancelledByBuyer(current)) return current;
        throw new AppError('invalid_state', `The order is ${row === 'paid' ? 'PAID' : current.status}; only a PENDING_PAYMENT order can be cancelled.`);
      }
      return (await loadOrders(db, [row]))[0]!;
    },

    /**
     * An admin cancels an order: pending → its intent cancelled at the provider and its units
     * released; paid → refunded, units restocked or written off. Once a line has shipped (FULFILLED,
     * or PAID and shipped in part) the goods are with the carrier or the buyer: refunding them and
     * putting them back on sale would sell units that are gone, so it is refused (`order_shipped`);
     * the lines not yet shipped are the merchant's to cancel (cancelOrderLine), a return is not ours.
     */
    async adminCancel(orderId: string, restock: boolean): Promise<Order> {
      const [current] = await db.query<OrderRow>(sql.orderById, [orderId]);
      if (!current) throw new AppError('not_found', 'No such order.');
      if (current.status === 'PENDING_PAYMENT') {
        const closed = await closeUnpaid(ctx, orderId, async (tx) => {
          const [row] = await tx.query<{ user_id: string }>(sql.markCancelled, [orderId, 'admin_cancelled', clock.now(), 'PENDING_PAYMENT']);
          if (!row) return false;
          await inventory.releaseOrder(tx, orderId, 'cancelled');
          await emit(tx, [{ topic: OrderTopics.cancelled, payload: { orderId, userId: row.user_id, reason: 'admin_cancelled' } satisfies OrderCancelled }]);
          return true;
        });
        if (closed === 'paid') throw new AppError('invalid_state', 'The order was just paid; cancel it again to refund it.');
        if (closed) return records.getOrder(current.user_id, orderId);
      }
      const row = await db.transaction(async (tx) => {
        const [order] = await tx.query<OrderRow>(sql.lockOrder, [orderId]);
        if (!order) throw new AppError('not_found', 'No such order.');
        if (order.status === 'FULFILLED' || (order.status === 'PAID' && (await shippedLines(tx, orderId)) > 0)) {
          throw new AppError('order_shipped', `The order is ${order.status} and lines of it have shipped; cancel the lines not yet shipped instead (cancelOrderLine).`);
        }
        if (order.status !== 'PAID') throw new AppError('invalid_state', `The order is ${order.status}.`);
        await cancelPaidOrder(ctx, tx, order, 'admin_cancelled', restock);
        return order;
      });
      return records.getOrder(row.user_id, orderId);
    },
  };
}

/** How many lines of the order have shipped (the caller holds the order's lock, which shipping takes too). */
export async function shippedLines(tx: Tx, orderId: string): Promise<number> {
  const [{ n }] = (await tx.query<{ n: number }>(sql.shippedLines, [orderId])) as [{ n: number }];
  return n;
}

/**
 * Cancels a PAID order, locked by the caller, in the caller's transaction: its units leave the sold
 * count (restocked, or written off) and its capture is sent back (payment's refund consumer).
 */
export async function cancelPaidOrder({ clock, inventory, emit }: OrderContext, tx: Tx, order: OrderRow, reason: 'admin_cancelled' | 'sale_cancelled', restock: boolean): Promise<void> {
  await tx.query(sql.markCancelled, [order.id, reason, clock.now(), 'PAID']);
  await inventory.unsellOrder(tx, order.id, restock);
  await emit(tx, [
    { topic: OrderTopics.refundRequested, payload: { orderId: order.id, userId: order.user_id, reason } satisfies OrderRefundRequested },
    { topic: OrderTopics.cancelled, payload: { orderId: order.id, userId: order.user_id, reason } satisfies OrderCancelled },
  ]);
}
