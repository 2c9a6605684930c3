import { setTimeout as sleep } from 'node:timers/promises';
import { OrderTopics, type OrderCancelled, type OrderSaleClosed } from './contracts.ts';
import type { OrderContext } from './context.ts';
import { cancelPaidOrder, shippedLines } from './cancel.ts';
import { closeUnpaid } from './closing.ts';
import type { Tx } from '../platform/database/index.ts';
import type { OrderRow, OrderStatus } from './model.ts';
import * as sql from './sql.ts';

/** How many orders of a cancelled sale are closed at once (each close asks the provider). */
const CONCURRENCY = 8;
/** Passes over the orders that could not be closed yet, and the pause before each (times the pass). */
const PASSES = 3;
const RETRY_PAUSE_MS = 100;

/**
 * The merchant cancelled a sale (`sale.cancelled`): every order that was pending is closed with
 * `closedReason = 'sale_cancelled'`. A pending one the way every close goes — the provider's intent
 * cancelled first (voided), then its holds released; one paid meanwhile (the capture beat the
 * void, or its webhook landed after the cancel) is cancelled with a refund and its units restocked.
 * Orders paid before the cancel stand; "paid" is the order's state in the database: one whose
 * capture was taken before the cancel but not yet applied is closed, and its payment refunded
 * when it lands on the closed order. Then `order.sale_closed` (the merchant's summary follows).
 * Idempotent: a redelivery finds nothing left to close; an order that could not be closed (the
 * provider unreachable) makes the whole message fail and retry.
 */
export async function closeOrdersOfSale(ctx: OrderContext, saleId: string, cancelledAt: Date): Promise<{ cancelled: number; refunded: number }> {
  let orders = await ctx.db.query<{ id: string; status: OrderStatus }>(sql.ordersToCloseForSale, [saleId, cancelledAt]);
  const outcome = { cancelled: 0, refunded: 0 };
  let failures: unknown[] = [];
  // An order whose buyer is paying right now cannot be closed this instant (closeUnpaid gives up
  // after three tries): it gets two more passes here before the whole message is retried, so a
  // busy sale's cancel does not spend the broker's attempts on a few orders in mid-payment.
  for (let pass = 1; pass <= PASSES && orders.length > 0; pass++) {
    if (pass > 1) await sleep(RETRY_PAUSE_MS * pass);
    const failed: Array<{ id: string; status: OrderStatus }> = [];
    failures = [];
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < orders.length) {
        const order = orders[next++]!;
        try {
          const result = order.status === 'PENDING_PAYMENT' ? await closePending(ctx, order.id) : 'paid';
          if (result === 'cancelled') outcome.cancelled++;
          if (result === 'paid' && (await refundPaid(ctx, order.id))) outcome.refunded++;
        } catch (error) {
          failed.push(order);
          failures.push(error);
          ctx.log.warn({ err: error, orderId: order.id, saleId, pass }, 'could not close an order of a cancelled sale; will retry');
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(CONCURRENCY, orders.length) }, worker));
    orders = failed;
  }
  if (failures.length > 0) throw new AggregateError(failures, `${failures.length} orders of cancelled sale ${saleId} are not closed yet`);
  // A redelivery says it again: the merchant's notice is keyed by the sale, so it is written once.
  await ctx.db.transaction((tx) => ctx.emit(tx, [{ topic: OrderTopics.saleClosed, payload: { saleId, ...outcome } satisfies OrderSaleClosed }]));
  return outcome;
}

async function closePending(ctx: OrderContext, orderId: string): Promise<'cancelled' | 'paid' | 'not_pending'> {
  const { db, clock, inventory, emit } = ctx;
  const close = async (tx: Tx): Promise<boolean> => {
    const [row] = await tx.query<{ user_id: string }>(sql.markCancelled, [orderId, 'sale_cancelled', clock.now(), 'PENDING_PAYMENT']);
    if (!row) return false;
    await inventory.releaseOrder(tx, orderId, 'sale_cancelled');
    await emit(tx, [{ topic: OrderTopics.cancelled, payload: { orderId, userId: row.user_id, reason: 'sale_cancelled' } satisfies OrderCancelled }]);
    return true;
  };
  let closed = await closeUnpaid(ctx, orderId, close);
  // The capture beat the void but is not applied yet: close the order anyway. When its payment
  // lands, it lands on a closed order and is refunded (`order_closed`), like any late payment.
  if (closed === 'paid') closed = await db.transaction(close);
  if (closed) return 'cancelled';
  // Someone else closed it, or a payment made it PAID between our read and the close.
  const [now] = await ctx.db.query<OrderRow>(sql.orderById, [orderId]);
  return now?.status === 'PAID' ? 'paid' : 'not_pending';
}

/** A paid order of the cancelled sale: cancelled, its units back on sale, its capture refunded (payment's consumer). */
async function refundPaid(ctx: OrderContext, orderId: string): Promise<boolean> {
  return ctx.db.transaction(async (tx) => {
    const [order] = await tx.query<OrderRow>(sql.lockOrder, [orderId]);
    if (!order || order.status !== 'PAID') return false;
    if ((await shippedLines(tx, orderId)) > 0) {
      ctx.log.warn({ orderId }, 'an order of the cancelled sale, paid meanwhile, has shipped already: it stands');
      return false;
    }
    await cancelPaidOrder(ctx, tx, order, 'sale_cancelled', true);
    return true;
  });
}
