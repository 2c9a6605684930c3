import { randomUUID } from 'node:crypto';
import { PaymentTopics, type PaymentRefunded } from './contracts.ts';
import { paymentOfOrder, type PaymentContext } from './context.ts';
import * as sql from './sql.ts';

/** Refunds an order's capture in full, once: the provider call is keyed by the payment id. */
export async function refundOrder(ctx: PaymentContext, orderId: string, reason: string, buyerId: string | null = null): Promise<'refunded' | 'nothing_to_refund' | 'already_refunded'> {
  const { db, clock, gateway, emit } = ctx;
  const payment = await paymentOfOrder(db, orderId);
  if (!payment || payment.status !== 'succeeded') return 'nothing_to_refund';
  if ((await db.query(sql.refundOfPayment, [payment.id])).length > 0) return 'already_refunded';
  const refund = await gateway.refund({ intentId: payment.provider_intent_id, amount: payment.amount, idempotencyKey: `refund-${payment.id}` });
  await db.transaction(async (tx) => {
    const [inserted] = await tx.query<{ id: string }>(sql.insertRefund, [randomUUID(), payment.id, orderId, refund.id, payment.amount, reason, clock.now()]);
    if (!inserted) return;
    await emit(tx, [{
      topic: PaymentTopics.refunded,
      payload: { paymentId: payment.id, orderId, userId: payment.user_id ?? buyerId, refundId: inserted.id, amount: payment.amount, currency: payment.currency, reason } satisfies PaymentRefunded,
    }]);
  });
  return 'refunded';
}
