import { randomUUID } from 'node:crypto';
import type { Tx } from '../platform/database/index.ts';
import { AppError } from '../platform/errors.ts';
import { GatewayError, type PaymentGateway, type PaymentIntent } from '../platform/payment-provider/port.ts';
import { isUuid } from '../platform/uuid.ts';
import { PaymentTopics, type CaptureRejected, type CaptureRejection, type PaymentSucceeded } from './contracts.ts';
import type { PaymentContext, PaymentRow } from './context.ts';
import { costOf, mismatchOf } from './reconcile.ts';
import * as sql from './sql.ts';

/** What a capture did: paid its order (now or before), was rejected (to be refunded), or named no order of ours. */
export type CaptureOutcome = 'applied' | 'rejected' | 'ignored';

/**
 * Records a capture once, whoever saw it first (webhook or close check), and only if it matches:
 * the payment recorded for this intent, or (a crash between creating an intent and recording it)
 * the order its metadata names, with the order's exact amount and currency. Anything else is
 * rejected: recorded and refunded in full, never dropped.
 */
export async function recordCapture(ctx: PaymentContext, tx: Tx, intent: PaymentIntent): Promise<CaptureOutcome> {
  const { clock } = ctx;
  if (!Number.isSafeInteger(intent.amount) || intent.amount <= 0) throw new AppError('validation_failed', 'The payment intent amount is not a positive integer.');
  const [row] = await tx.query<PaymentRow>(sql.lockPaymentOfIntent, [intent.id]);
  if (row?.status === 'succeeded') return 'applied';
  if (!row) return recordUnrecordedCapture(ctx, tx, intent);
  const mismatch = mismatchOf(intent, row);
  if (mismatch) {
    await tx.query(sql.markCaptureRejected, [intent.id, clock.now(), `capture rejected: ${mismatch}`]);
    return rejectCapture(ctx, tx, intent, row.order_id, mismatch);
  }
  const [paid] = await tx.query<{ id: string; order_id: string; user_id: string | null; amount: number; currency: string }>(sql.markSucceeded, [intent.id, clock.now()]);
  if (paid) await emitSucceeded(ctx, tx, paid);
  return 'applied';
}

/** A capture of an intent we have no payment row for: it may only pay an order that has no payment yet, exactly. */
async function recordUnrecordedCapture(ctx: PaymentContext, tx: Tx, intent: PaymentIntent): Promise<CaptureOutcome> {
  const { clock, orders, log } = ctx;
  if (intent.orderId === '') {
    // No order named (an intent made in the provider's dashboard, or by another system on the account): not ours to touch.
    log.warn({ intentId: intent.id }, 'capture reported for an intent that names no order; ignored');
    return 'ignored';
  }
  const orderId = intent.orderId.toLowerCase();
  const terms = isUuid(orderId) ? await orders.paymentTerms(tx, orderId) : undefined;
  if (!terms) return rejectCapture(ctx, tx, intent, intent.orderId, 'unknown_order');
  const mismatch = mismatchOf(intent, costOf(terms));
  if (mismatch) return rejectCapture(ctx, tx, intent, orderId, mismatch);
  const [row] = await tx.query<{ id: string; order_id: string; user_id: string | null; amount: number; currency: string }>(
    sql.insertSucceededPayment, [randomUUID(), orderId, intent.id, terms.totalAmount, terms.currency, clock.now()]);
  // The order already has a payment (its own intent): this one is a second charge for it.
  if (!row) return rejectCapture(ctx, tx, intent, orderId, 'second_intent');
  await emitSucceeded(ctx, tx, row);
  return 'applied';
}

async function emitSucceeded({ emit }: PaymentContext, tx: Tx, row: { id: string; order_id: string; user_id: string | null; amount: number; currency: string }): Promise<void> {
  await emit(tx, [{ topic: PaymentTopics.succeeded, payload: { paymentId: row.id, orderId: row.order_id, userId: row.user_id, amount: row.amount, currency: row.currency } satisfies PaymentSucceeded }]);
}

/** Recorded once per intent; payment's own consumer refunds it (the provider call stays outside this transaction). */
async function rejectCapture(ctx: PaymentContext, tx: Tx, intent: PaymentIntent, orderId: string, reason: CaptureRejection): Promise<'rejected'> {
  const { clock, emit, log, onCaptureRejected } = ctx;
  const currency = intent.currency.toUpperCase();
  const [fresh] = await tx.query(sql.insertRejectedCapture, [intent.id, orderId, intent.amount, currency, reason, clock.now()]);
  if (fresh) {
    log.warn({ intentId: intent.id, orderId, amount: intent.amount, currency, reason }, 'capture rejected; refunding it in full');
    await emit(tx, [{ topic: PaymentTopics.captureRejected, payload: { providerIntentId: intent.id, orderId, amount: intent.amount, currency, reason } satisfies CaptureRejected }]);
    if (onCaptureRejected) tx.afterCommit(() => onCaptureRejected(reason));
  }
  return 'rejected';
}

/** Refunds a rejected capture in full, keyed by its intent: a redelivery gets the same refund back. */
export async function refundRejectedCapture({ db, clock, gateway, log }: PaymentContext, capture: CaptureRejected): Promise<void> {
  const intent = await capturedAtProvider(gateway, capture.providerIntentId);
  if (!intent) {
    // The event said captured, the provider says not (or knows no such intent): there is no money to give back.
    log.warn({ intentId: capture.providerIntentId }, 'a rejected capture the provider has not captured; nothing to refund');
    await db.query(sql.markRejectedCaptureNotCaptured, [capture.providerIntentId, clock.now()]);
    return;
  }
  const refund = await gateway.refund({ intentId: intent.id, amount: intent.amount, idempotencyKey: `refund-rejected-${intent.id}` });
  await db.query(sql.markRejectedCaptureRefunded, [intent.id, refund.id, clock.now()]);
}

/** The intent as the provider has it, if it was captured; undefined if it was not, or the provider knows no such intent. */
async function capturedAtProvider(gateway: PaymentGateway, intentId: string): Promise<PaymentIntent | undefined> {
  try {
    const intent = await gateway.retrieveIntent(intentId);
    return intent.status === 'succeeded' ? intent : undefined;
  } catch (error) {
    if (error instanceof GatewayError && error.status === 404) return undefined;
    throw error;
  }
}
