import { randomUUID } from 'node:crypto';
import { PaymentTopics, type PaymentRefunded } from './contracts.ts';
import { paymentOfOrder, type PaymentContext } from './context.ts';
import * as sql from './sql.ts';

type RefundOutcome = 'refunded' | 'nothing_to_refund' | 'already_refunded';

/**
 * Refunds what is left of an order's capture (all of it, unless lines were refunded before), once:
 * the provider call is keyed by the payment id.
 */
export async function refundOrder(ctx: PaymentContext, orderId: string, reason: string, buyerId: string | null = null): Promise<RefundOutcome> {
  return refund(ctx, { orderId, key: 'full', reason, buyerId });
}

/** Refunds a cancelled line's amount, once per (order, line): a refund in part, keyed by payment and the line's hold. */
export async function refundLine(ctx: PaymentContext, line: { orderId: string; holdId: string; amount: number; buyerId: string | null }): Promise<RefundOutcome> {
  return refund(ctx, { orderId: line.orderId, key: `line-${line.holdId}`, amount: line.amount, reason: 'line_cancelled', buyerId: line.buyerId });
}

/**
 * One refund per (payment, key), never more than what is left of the capture. The key is in the
 * provider's idempotency key (`refund-<paymentId>` for the whole, `refund-<paymentId>-<key>` for a
 * part), so a retry after a crash gets the same refund back.
 */
async function refund(ctx: PaymentContext, r: { orderId: string; key: string; amount?: number; reason: string; buyerId: string | null }): Promise<RefundOutcome> {
  const { db, clock, gateway, emit } = ctx;
  const payment = await paymentOfOrder(db, r.orderId);
  if (!payment || payment.status !== 'succeeded') return 'nothing_to_refund';
  const earlier = await db.query<{ refund_key: string; amount: string }>(sql.refundsOfPayment, [payment.id]);
  if (earlier.some((e) => e.refund_key === r.key)) return 'already_refunded';
  const left = Number(payment.amount) - earlier.reduce((sum, e) => sum + Number(e.amount), 0);
  const amount = Math.min(r.amount ?? left, left);
  if (amount <= 0) return 'already_refunded';
  const idempotencyKey = r.key === 'full' ? `refund-${payment.id}` : `refund-${payment.id}-${r.key}`;
  const made = await gateway.refund({ intentId: payment.provider_intent_id, amount, idempotencyKey });
  await db.transaction(async (tx) => {
    const [inserted] = await tx.query<{ id: string }>(sql.insertRefund, [randomUUID(), payment.id, r.orderId, made.id, amount, r.reason, clock.now(), r.key]);
    if (!inserted) return;
    await emit(tx, [{
      topic: PaymentTopics.refunded,
      payload: { paymentId: payment.id, orderId: r.orderId, userId: payment.user_id ?? r.buyerId, refundId: inserted.id, amount, currency: payment.currency, reason: r.reason } satisfies PaymentRefunded,
    }]);
  });
  return 'refunded';
}
