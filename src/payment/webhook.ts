import { AppError } from '../platform/errors.ts';
import { WebhookVerificationError } from '../platform/payment-provider/port.ts';
import { PaymentTopics, type PaymentFailed } from './contracts.ts';
import type { PaymentContext } from './context.ts';
import { recordCapture } from './capture.ts';
import * as sql from './sql.ts';
import { inOrderTrace } from './trace.ts';

/**
 * A provider webhook: signature and replay window verified, deduplicated by event id in the same
 * transaction as its effect, applied once.
 */
export async function handleWebhook(ctx: PaymentContext, rawBody: string, signature: string | undefined): Promise<{ duplicate: boolean }> {
  const { db, clock, gateway, emit } = ctx;
  let event;
  try {
    event = gateway.verifyWebhook(rawBody, signature, clock.now().getTime());
  } catch (error) {
    if (error instanceof WebhookVerificationError) throw new AppError('invalid_signature', error.message);
    throw new AppError('validation_failed', 'The webhook body is not a valid event.', { cause: error });
  }
  return inOrderTrace(ctx, event.intent?.orderId, 'payment webhook', { 'flashsale.webhook.type': event.type }, () => db.transaction(async (tx) => {
    const fresh = await tx.query(sql.recordWebhook, [event.id, event.type, clock.now()]);
    if (fresh.length === 0) return { duplicate: true };
    const intent = event.intent;
    if (!intent) return { duplicate: false };
    if (event.type === 'payment_intent.succeeded') {
      await recordCapture(ctx, tx, intent);
    } else if (event.type === 'payment_intent.payment_failed') {
      const [row] = await tx.query<{ id: string; order_id: string; user_id: string | null }>(sql.markFailed, [intent.id, clock.now(), intent.lastError ?? 'declined']);
      if (row) await emit(tx, [{ topic: PaymentTopics.failed, payload: { paymentId: row.id, orderId: row.order_id, userId: row.user_id, reason: intent.lastError ?? 'declined' } satisfies PaymentFailed }]);
    } else if (event.type === 'payment_intent.canceled') {
      await tx.query(sql.markCanceled, [intent.id, clock.now()]);
    }
    return { duplicate: false };
  }));
}
