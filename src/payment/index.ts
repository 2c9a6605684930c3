import { randomUUID } from 'node:crypto';
import type { Clock } from '../platform/clock.ts';
import type { Database, Tx } from '../platform/database/index.ts';
import { writeEvents, type OutgoingEvent } from '../platform/broker/outbox.ts';
import type { Subscriber } from '../platform/broker/broker.ts';
import { AppError } from '../platform/errors.ts';
import { GatewayError, WebhookVerificationError, type PaymentGateway, type PaymentIntent } from '../platform/gateway/gateway.ts';
import type { Logger } from '../platform/logger.ts';
import type { OrderRefundRequested } from '../order/contracts.ts';
import type { OrderTerms, Orders } from '../order/index.ts';
import { PaymentTopics, type CaptureRejected, type CaptureRejection, type PaymentFailed, type PaymentRefunded, type PaymentSucceeded } from './contracts.ts';
import { isUuid } from '../platform/uuid.ts';
import * as sql from './sql.ts';
import { isPaid, mismatchOf, reconcileWithProvider, type Reconciliation, type RejectedCaptureRow } from './reconcile.ts';

export type PaymentStatus = 'pending' | 'succeeded' | 'failed' | 'canceled';

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

export interface PaymentsDeps {
  db: Database;
  clock: Clock;
  gateway: PaymentGateway;
  orders: Pick<Orders, 'getOrder' | 'paymentTerms' | 'lockPendingForPayment'>;
  log: Logger;
  onEventsWritten?: () => void;
  /** A capture was rejected (and will be refunded): the metric's hook. */
  onCaptureRejected?: (reason: CaptureRejection) => void;
}

interface PaymentRow {
  id: string; order_id: string; user_id: string | null; provider_intent_id: string; amount: number; currency: string;
  status: PaymentStatus; last_error: string | null; hosted_url: string | null;
}

/** What a capture did: paid its order (now or before), was rejected (to be refunded), or named no order of ours. */
export type CaptureOutcome = 'applied' | 'rejected' | 'ignored';

/**
 * Payment: one provider payment intent per order, webhook intake (signature, replay window, event
 * dedupe), the capture recorded exactly once, the close check's question to the provider, refunds.
 */
export function createPayments({ db, clock, gateway, orders, log, onEventsWritten, onCaptureRejected }: PaymentsDeps) {
  async function emit(tx: Tx, events: OutgoingEvent[]): Promise<void> {
    await writeEvents(tx, clock, events);
    if (onEventsWritten) tx.afterCommit(onEventsWritten);
  }

  async function paymentOfOrder(orderId: string): Promise<PaymentRow | undefined> {
    return (await db.query<PaymentRow>(sql.paymentOfOrder, [orderId]))[0];
  }

  /**
   * Records a capture once, whoever saw it first (webhook or close check), and only if it matches:
   * the payment recorded for this intent, or (a crash between creating an intent and recording it)
   * the order its metadata names, with the order's exact amount and currency. Anything else is
   * rejected: recorded and refunded in full, never dropped.
   */
  async function recordCapture(tx: Tx, intent: PaymentIntent): Promise<CaptureOutcome> {
    if (!Number.isSafeInteger(intent.amount) || intent.amount <= 0) throw new AppError('validation_failed', 'The payment intent amount is not a positive integer.');
    const [row] = await tx.query<PaymentRow>(sql.lockPaymentOfIntent, [intent.id]);
    if (row?.status === 'succeeded') return 'applied';
    if (!row) return recordUnrecordedCapture(tx, intent);
    const mismatch = mismatchOf(intent, row);
    if (mismatch) {
      await tx.query(sql.markCaptureRejected, [intent.id, clock.now(), `capture rejected: ${mismatch}`]);
      return rejectCapture(tx, intent, row.order_id, mismatch);
    }
    const [paid] = await tx.query<{ id: string; order_id: string; user_id: string | null; amount: number; currency: string }>(sql.markSucceeded, [intent.id, clock.now()]);
    if (paid) await emitSucceeded(tx, paid);
    return 'applied';
  }

  /** A capture of an intent we have no payment row for: it may only pay an order that has no payment yet, exactly. */
  async function recordUnrecordedCapture(tx: Tx, intent: PaymentIntent): Promise<CaptureOutcome> {
    if (intent.orderId === '') {
      // No order named (an intent made in the provider's dashboard, or by another system on the account): not ours to touch.
      log.warn({ intentId: intent.id }, 'capture reported for an intent that names no order; ignored');
      return 'ignored';
    }
    const orderId = intent.orderId.toLowerCase();
    const terms = isUuid(orderId) ? await orders.paymentTerms(tx, orderId) : undefined;
    if (!terms) return rejectCapture(tx, intent, intent.orderId, 'unknown_order');
    const mismatch = mismatchOf(intent, terms);
    if (mismatch) return rejectCapture(tx, intent, orderId, mismatch);
    const [row] = await tx.query<{ id: string; order_id: string; user_id: string | null; amount: number; currency: string }>(
      sql.insertSucceededPayment, [randomUUID(), orderId, intent.id, terms.totalAmount, terms.currency, clock.now()]);
    // The order already has a payment (its own intent): this one is a second charge for it.
    if (!row) return rejectCapture(tx, intent, orderId, 'second_intent');
    await emitSucceeded(tx, row);
    return 'applied';
  }

  async function emitSucceeded(tx: Tx, row: { id: string; order_id: string; user_id: string | null; amount: number; currency: string }): Promise<void> {
    await emit(tx, [{ topic: PaymentTopics.succeeded, payload: { paymentId: row.id, orderId: row.order_id, userId: row.user_id, amount: row.amount, currency: row.currency } satisfies PaymentSucceeded }]);
  }

  /** Recorded once per intent; payment's own consumer refunds it (the provider call stays outside this transaction). */
  async function rejectCapture(tx: Tx, intent: PaymentIntent, orderId: string, reason: CaptureRejection): Promise<'rejected'> {
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
  async function refundRejectedCapture(capture: CaptureRejected): Promise<void> {
    const refund = await gateway.refund({ intentId: capture.providerIntentId, amount: capture.amount, idempotencyKey: `refund-rejected-${capture.providerIntentId}` });
    await db.query(sql.markRejectedCaptureRefunded, [capture.providerIntentId, refund.id, clock.now()]);
  }

  function unavailable(error: unknown): AppError {
    return new AppError('payment_unavailable', undefined, { retryAfterS: 2, cause: error });
  }

  function view(row: PaymentRow, hostedUrl: string): Payment {
    return { id: row.id, orderId: row.order_id, providerPaymentId: row.provider_intent_id, amount: row.amount, currency: row.currency, status: row.status, lastError: row.last_error, hostedUrl };
  }

  return {
    /**
     * Starts (or resumes) paying for a pending order: one provider intent per order, its hosted page.
     * Everything sent to the provider comes from the stored order, never from the request.
     */
    async payOrder(userId: string, orderId: string): Promise<Payment> {
      const order = await orders.getOrder(userId, orderId);
      if (order.status !== 'PENDING_PAYMENT') throw new AppError('invalid_state', `The order is ${order.status}.`);
      if (clock.now() >= order.expiresAt) throw new AppError('payment_window_closed');
      const recorded = await paymentOfOrder(order.id);
      if (recorded?.hosted_url) return view(recorded, recorded.hosted_url);
      let intent: PaymentIntent;
      try {
        intent = recorded
          ? await gateway.retrieveIntent(recorded.provider_intent_id)
          : await gateway.createIntent({ amount: order.totalAmount, currency: order.currency, orderId: order.id, idempotencyKey: `order-${order.id}` });
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
      const payment = (await paymentOfOrder(order.id))!;
      return view(payment, payment.hosted_url ?? intent.hostedUrl);
    },

    /** In the caller's transaction: whether the order has a payment recorded and not settled. */
    async hasOpenPayment(tx: Tx, orderId: string): Promise<boolean> {
      return (await tx.query(sql.openPaymentOfOrder, [orderId])).length > 0;
    },

    /** A provider webhook: verified, deduplicated by event id, applied once. */
    async handleWebhook(rawBody: string, signature: string | undefined): Promise<{ duplicate: boolean }> {
      let event;
      try {
        event = gateway.verifyWebhook(rawBody, signature, clock.now().getTime());
      } catch (error) {
        if (error instanceof WebhookVerificationError) throw new AppError('invalid_signature', error.message);
        throw new AppError('validation_failed', 'The webhook body is not a valid event.', { cause: error });
      }
      return db.transaction(async (tx) => {
        const fresh = await tx.query(sql.recordWebhook, [event.id, event.type, clock.now()]);
        if (fresh.length === 0) return { duplicate: true };
        const intent = event.intent;
        if (!intent) return { duplicate: false };
        if (event.type === 'payment_intent.succeeded') {
          await recordCapture(tx, intent);
        } else if (event.type === 'payment_intent.payment_failed') {
          const [row] = await tx.query<{ id: string; order_id: string; user_id: string | null }>(sql.markFailed, [intent.id, clock.now(), intent.lastError ?? 'declined']);
          if (row) await emit(tx, [{ topic: PaymentTopics.failed, payload: { paymentId: row.id, orderId: row.order_id, userId: row.user_id, reason: intent.lastError ?? 'declined' } satisfies PaymentFailed }]);
        } else if (event.type === 'payment_intent.canceled') {
          await tx.query(sql.markCanceled, [intent.id, clock.now()]);
        }
        return { duplicate: false };
      });
    },

    /**
     * The close check's question: was this order paid? Asks the provider (a webhook may be late or
     * lost). 'unpaid' is only answered once the intent is cancelled, so it can no longer be paid.
     */
    async settleBeforeClose(orderId: string): Promise<'paid' | 'unpaid'> {
      const payment = await paymentOfOrder(orderId);
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
        return (await db.transaction((tx) => recordCapture(tx, intent))) === 'applied' ? 'paid' : 'unpaid';
      }
      if (intent.status !== 'canceled') throw new Error(`intent ${intent.id} is ${intent.status} after cancel`);
      await db.query(sql.markCanceled, [intent.id, clock.now()]);
      return 'unpaid';
    },

    /** Refunds an order's capture in full, once: the provider call is keyed by the payment id. */
    async refundOrder(orderId: string, reason: string, buyerId: string | null = null): Promise<'refunded' | 'nothing_to_refund' | 'already_refunded'> {
      const payment = await paymentOfOrder(orderId);
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
    },

    /** Payment's consumer: refunds requested by order (late payment, admin cancel). */
    subscribe(broker: Subscriber): void {
      broker.consumeSelfManaged('payment-refunds', ['order.refund_requested'], async (message) => {
        const { orderId, reason, userId } = message.payload as OrderRefundRequested;
        // A payment recorded from the provider alone has no buyer; the order side names it.
        const outcome = await this.refundOrder(orderId, reason, userId || null);
        log.info({ orderId, reason, outcome }, 'refund requested');
      });
      broker.consumeSelfManaged('payment-rejected-captures', [PaymentTopics.captureRejected], async (message) => {
        await refundRejectedCapture(message.payload as CaptureRejected);
      });
    },

    /** The money invariants the database alone can prove, given each order's status and total. */
    async audit(orderTerms: ReadonlyMap<string, OrderTerms>, quiet: boolean): Promise<Array<{ check: string; message: string; ids: string[] }>> {
      const violations: Array<{ check: string; message: string; ids: string[] }> = [];
      const captures = new Map((await db.query<{ order_id: string; captures: number }>(sql.auditCaptures)).map((r) => [r.order_id, Number(r.captures)]));
      for (const [orderId, { status }] of orderTerms) {
        const n = captures.get(orderId) ?? 0;
        if (isPaid(status) && n !== 1) violations.push({ check: 'paid_order_has_one_capture', message: `order is ${status} with ${n} captures`, ids: [orderId] });
      }
      const refunded = new Set((await db.query<{ order_id: string }>(sql.auditRefunds)).map((r) => r.order_id));
      for (const row of await db.query<{ id: string; order_id: string; amount: number; currency: string }>(sql.succeededPayments)) {
        const order = orderTerms.get(row.order_id);
        if (!order) violations.push({ check: 'capture_has_order', message: 'a capture for an order that does not exist', ids: [row.id, row.order_id] });
        else if (mismatchOf(row, order)) {
          violations.push({ check: 'capture_matches_order', message: `a capture of ${row.amount} ${row.currency} for an order of ${order.totalAmount} ${order.currency}`, ids: [row.id, row.order_id] });
        } else if (quiet && (order.status === 'CANCELLED' || order.status === 'EXPIRED') && !refunded.has(row.order_id)) {
          violations.push({ check: 'closed_order_capture_refunded', message: `a capture for a ${order.status} order has no refund`, ids: [row.id, row.order_id] });
        }
      }
      for (const r of await db.query<{ id: string; order_id: string; amount: number; paid: number; payment_status: string }>(sql.auditRefunds)) {
        if (r.payment_status !== 'succeeded' || Number(r.amount) > Number(r.paid)) violations.push({ check: 'refund_matches_capture', message: `refund of ${r.amount} against a ${r.payment_status} payment of ${r.paid}`, ids: [r.id, r.order_id] });
      }
      if (quiet) {
        const unrefunded = (await db.query<RejectedCaptureRow>(sql.rejectedCaptures)).filter((r) => r.status !== 'refunded');
        if (unrefunded.length > 0) {
          violations.push({ check: 'rejected_capture_refunded', message: `${unrefunded.length} rejected captures not yet refunded`, ids: unrefunded.map((r) => r.provider_intent_id) });
        }
      }
      return violations;
    },

    /** Captures that paid nothing, by reason and refund state (the audit reports them). */
    async rejectedCaptures(): Promise<RejectedCaptureRow[]> {
      return db.query<RejectedCaptureRow>(sql.rejectedCaptures);
    },

    /** Proves the database and the provider agree on every capture and refund (see reconcile.ts). */
    reconcile(orderTerms: ReadonlyMap<string, OrderTerms>, opts: { quiet: boolean }): Promise<Reconciliation> {
      return reconcileWithProvider({ db, gateway, now: () => clock.now() }, orderTerms, opts);
    },
  };
}

export type Payments = ReturnType<typeof createPayments>;

