import type { Tx } from '../platform/database/index.ts';
import { OrderTopics, type OrderPaid, type OrderRefundRequested } from './contracts.ts';
import type { OrderContext } from './context.ts';
import type { OrderRow } from './model.ts';
import * as sql from './sql.ts';

/**
 * payment.succeeded, in the delivery's transaction: a pending order becomes PAID and its units
 * sold; a payment for an order already closed (expired, cancelled) is sent back for a refund.
 */
export async function applyPayment({ clock, inventory, emit }: OrderContext, tx: Tx, payment: { orderId: string; paymentId: string }): Promise<void> {
  const { orderId, paymentId } = payment;
  const [paid] = await tx.query<{ user_id: string }>(sql.markPaid, [orderId, clock.now()]);
  if (paid) {
    await inventory.sellOrder(tx, orderId);
    await emit(tx, [{ topic: OrderTopics.paid, payload: { orderId, userId: paid.user_id, paymentId } satisfies OrderPaid }]);
    return;
  }
  const [row] = await tx.query<OrderRow>(sql.orderById, [orderId]);
  // Already paid (and maybe shipped since): the same capture, seen again.
  if (row && (row.status === 'PAID' || row.status === 'FULFILLED')) return;
  await emit(tx, [{ topic: OrderTopics.refundRequested, payload: { orderId, userId: row?.user_id ?? '', reason: 'order_closed' } satisfies OrderRefundRequested }]);
}
