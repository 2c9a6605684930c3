import { GatewayError, type PaymentIntent } from '../platform/payment-provider/port.ts';
import { paymentOfOrder, unavailable, type PaymentContext } from './context.ts';
import { recordCapture } from './capture.ts';
import * as sql from './sql.ts';

/**
 * The close check's question: was this order paid? Asks the provider (a webhook may be late or
 * lost). 'unpaid' is only answered once the intent is cancelled, so it can no longer be paid.
 */
export async function settleBeforeClose(ctx: PaymentContext, orderId: string): Promise<'paid' | 'unpaid'> {
  const { db, clock, gateway, log } = ctx;
  const payment = await paymentOfOrder(db, orderId);
  if (!payment) return 'unpaid';
  if (payment.status === 'succeeded') return 'paid';
  if (payment.status === 'canceled') return 'unpaid';
  let intent: PaymentIntent;
  try {
    intent = await gateway.retrieveIntent(payment.provider_intent_id);
  } catch (error) {
    if (error instanceof GatewayError && error.retryable) throw unavailable(error);
    // The provider has no such intent (its records were lost): nothing can be paid through it.
    log.warn({ err: error, orderId, intentId: payment.provider_intent_id }, 'provider does not know the intent; closing as unpaid');
    await db.query(sql.markCanceled, [payment.provider_intent_id, clock.now()]);
    return 'unpaid';
  }
  if (intent.status !== 'succeeded' && intent.status !== 'canceled') {
    try {
      intent = await gateway.cancelIntent(intent.id);
    } catch (error) {
      if (error instanceof GatewayError && error.retryable) throw unavailable(error);
      intent = await gateway.retrieveIntent(payment.provider_intent_id);
    }
  }
  if (intent.status === 'succeeded') {
    // A rejected capture paid nothing (it is being refunded): the order closes as unpaid.
    const captured = intent;
    return (await db.transaction((tx) => recordCapture(ctx, tx, captured))) === 'applied' ? 'paid' : 'unpaid';
  }
  if (intent.status !== 'canceled') throw new Error(`intent ${intent.id} is ${intent.status} after cancel`);
  await db.query(sql.markCanceled, [intent.id, clock.now()]);
  return 'unpaid';
}
