import type { Tx } from '../platform/database/index.ts';
import { tracer } from '../platform/tracing/tracing.ts';
import { OrderTopics, type OrderExpired } from './contracts.ts';
import type { OrderContext } from './context.ts';
import type { OrderRow } from './model.ts';
import * as sql from './sql.ts';

/** Rolls a close back: a payment appeared after the close had asked the provider. */
class PaymentStartedWhileClosing extends Error {
  constructor(orderId: string) {
    super(`order ${orderId}: a payment was started while it was being closed; closing again`);
  }
}

/**
 * Closes a pending order as unpaid (expiry, a buyer's or an admin's cancel): asks the payment side
 * first — 'paid' if the provider took the money, else its intent is cancelled and can no longer be
 * paid — then runs `close` in a transaction. A payment recorded after settling looked (it found
 * none) could still be paid, and nothing would notice that capture: the order's row lock taken by
 * `close` orders us after payOrder's lock (lockPendingForPayment), so if a payment is in, the
 * transaction rolls back and the close starts over to settle it.
 */
export async function closeUnpaid<T>({ db, payments }: OrderContext, orderId: string, close: (tx: Tx) => Promise<T>): Promise<T | 'paid'> {
  for (let attempt = 1; ; attempt++) {
    if ((await payments.settleBeforeClose(orderId)) === 'paid') return 'paid';
    const outcome = await db.transaction(async (tx) => {
      const result = await close(tx);
      if (await payments.hasOpenPayment(tx, orderId)) throw new PaymentStartedWhileClosing(orderId);
      return result;
    }).catch((error: unknown) => {
      if (error instanceof PaymentStartedWhileClosing && attempt < 3) return error;
      throw error;
    });
    if (!(outcome instanceof PaymentStartedWhileClosing)) return outcome;
  }
}

/**
 * The deadline's close check: an unpaid order past its deadline is asked about at the provider
 * first, and only expired — stock released — if it was not paid. Idempotent; safe to run from the
 * deadline message, the recovery check and the sweeper at once.
 */
export function createClosing(ctx: OrderContext) {
  const { db, clock, inventory, emit, log, graceS } = ctx;
  let sweepTimer: NodeJS.Timeout | undefined;

  async function closeIfUnpaid(orderId: string): Promise<'not_pending' | 'not_due' | 'paid' | 'expired'> {
    const [row] = await db.query<OrderRow>(sql.orderById, [orderId]);
    if (!row || row.status !== 'PENDING_PAYMENT') return 'not_pending';
    if (clock.now() < row.expires_at) return 'not_due';
    const expired = await closeUnpaid(ctx, orderId, async (tx) => {
      const [closed] = await tx.query<{ user_id: string }>(sql.markExpired, [orderId, clock.now()]);
      if (!closed) return false;
      await inventory.releaseOrder(tx, orderId, 'expired');
      await emit(tx, [{ topic: OrderTopics.expired, payload: { orderId, userId: closed.user_id } satisfies OrderExpired }]);
      return true;
    });
    return expired === 'paid' ? 'paid' : expired ? 'expired' : 'not_pending';
  }

  /**
   * Closes what the deadline messages missed: overdue orders (past window + grace) and expired cart
   * holds. It also looks at the gate: a shared gate whose data was lost is otherwise only noticed by
   * the next buyer's admission, and after a sell-out there may be none; asking starts the rebuild.
   */
  async function sweep(): Promise<{ ordersClosed: number; cartHoldsReleased: number }> {
    await inventory.gateReady();
    const overdue = await db.query<{ id: string; traceparent: string | null }>(sql.overdueOrders, [new Date(clock.now().getTime() - graceS * 1000), 200]);
    let ordersClosed = 0;
    for (const { id, traceparent } of overdue) {
      try {
        // A close the deadline messages missed still belongs to the order's trace.
        const closed = tracer.enabled
          ? await tracer.run('order sweep close', { parent: traceparent ? { traceparent } : null, attributes: { 'flashsale.order_id': id } }, () => closeIfUnpaid(id))
          : await closeIfUnpaid(id);
        if (closed === 'expired') ordersClosed++;
      } catch (error) {
        log.warn({ err: error, orderId: id }, 'sweeper could not close an order; will retry');
      }
    }
    const cart = await inventory.expiredCartHolds(500);
    const released = cart.length > 0 ? await db.transaction((tx) => inventory.releaseHolds(tx, cart, 'expired')) : [];
    return { ordersClosed, cartHoldsReleased: released.length };
  }

  return {
    closeIfUnpaid,
    sweep,
    startSweeper(intervalMs: number): void {
      clearInterval(sweepTimer);
      sweepTimer = setInterval(() => void sweep().catch((error: unknown) => log.error({ err: error }, 'sweep failed')), intervalMs);
      sweepTimer.unref();
    },
    stopSweeper(): void {
      clearInterval(sweepTimer);
    },
  };
}
