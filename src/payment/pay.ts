import { randomUUID } from 'node:crypto';
import { AppError } from '../platform/errors.ts';
import type { PaymentIntent } from '../platform/payment-provider/port.ts';
import { paymentOfOrder, unavailable, type PaymentContext, type PaymentRow, type PaymentStatus } from './context.ts';
import * as sql from './sql.ts';

export interface Payment {
  id: string;
  orderId: string;
  providerPaymentId: string;
  amount: number;
  currency: string;
  status: PaymentStatus;
  lastError: string | null;
  /** The provider's hosted page where the buyer pays. */
  hostedUrl: string;
}

/**
 * Starts (or resumes) paying for a pending order: one provider intent per order, its hosted page.
 * Everything sent to the provider comes from the stored order, never from the request — except
 * `returnUrl`, where the hosted page sends the buyer back, which the HTTP edge has checked against
 * the web origins (WEB_ORIGINS); only the first call's is given to the provider.
 */
export async function payOrder(ctx: PaymentContext, userId: string, orderId: string, opts: { returnUrl?: string } = {}): Promise<Payment> {
  const { db, clock, gateway, orders, log } = ctx;
  const order = await orders.getOrder(userId, orderId);
  if (order.status !== 'PENDING_PAYMENT') throw new AppError('invalid_state', `The order is ${order.status}.`);
  if (clock.now() >= order.expiresAt) throw new AppError('payment_window_closed');
  const recorded = await paymentOfOrder(db, order.id);
  if (recorded?.hosted_url) return view(recorded, recorded.hosted_url);
  let intent: PaymentIntent;
  try {
    intent = recorded
      ? await gateway.retrieveIntent(recorded.provider_intent_id)
      : await gateway.createIntent({ amount: order.totalAmount, currency: order.currency, orderId: order.id, idempotencyKey: `order-${order.id}`, ...(opts.returnUrl ? { returnUrl: opts.returnUrl } : {}) });
  } catch (error) {
    // Whatever the provider said stays in our logs; the buyer only learns to retry.
    log.error({ err: error, orderId: order.id }, 'payment provider refused to create an intent');
    throw unavailable(error);
  }
  if (recorded) return view(recorded, intent.hostedUrl);
  // The provider call took time: the order may have been closed meanwhile, having found no
  // payment to settle. Recorded only while the order still awaits payment, under its lock.
  const isRecorded = await db.transaction(async (tx) => {
    if (!(await orders.lockPendingForPayment(tx, order.id))) return false;
    await tx.query(sql.insertPayment, [randomUUID(), order.id, userId, intent.id, order.totalAmount, order.currency, clock.now(), intent.hostedUrl]);
    return true;
  });
  if (!isRecorded) {
    await gateway.cancelIntent(intent.id).catch((error: unknown) => log.warn({ err: error, orderId: order.id, intentId: intent.id }, 'could not cancel the intent of an order closed during payment'));
    throw new AppError('payment_window_closed');
  }
  const payment = (await paymentOfOrder(db, order.id))!;
  return view(payment, payment.hosted_url ?? intent.hostedUrl);
}

function view(row: PaymentRow, hostedUrl: string): Payment {
  return { id: row.id, orderId: row.order_id, providerPaymentId: row.provider_intent_id, amount: row.amount, currency: row.currency, status: row.status, lastError: row.last_error, hostedUrl };
}
