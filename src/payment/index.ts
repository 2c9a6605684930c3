import { randomUUID } from 'node:crypto';
import type { Clock } from '../platform/clock.ts';
import type { Database, Tx } from '../platform/database/index.ts';
import { writeEvents, type OutgoingEvent } from '../platform/broker/outbox.ts';
import type { Subscriber } from '../platform/broker/broker.ts';
import { AppError } from '../platform/errors.ts';
import { GatewayError, WebhookVerificationError, type PaymentGateway, type PaymentIntent } from '../platform/gateway/gateway.ts';
import type { Logger } from '../platform/logger.ts';
import type { OrderRefundRequested } from '../order/contracts.ts';
import type { Orders } from '../order/index.ts';
import { PaymentTopics, type PaymentFailed, type PaymentRefunded, type PaymentSucceeded } from './contracts.ts';
import { isUuid } from '../platform/uuid.ts';
import * as sql from './sql.ts';

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
  orders: Pick<Orders, 'getOrder' | 'exists' | 'lockPendingForPayment'>;
  log: Logger;
  onEventsWritten?: () => void;
}

interface PaymentRow {
  id: string; order_id: string; user_id: string | null; provider_intent_id: string; amount: number; currency: string;
  status: PaymentStatus; last_error: string | null;
}

/**
 * Payment: one provider payment intent per order, webhook intake (signature, replay window, event
 * dedupe), the capture recorded exactly once, the close check's question to the provider, refunds.
 */
export function createPayments({ db, clock, gateway, orders, log, onEventsWritten }: PaymentsDeps) {
  async function emit(tx: Tx, events: OutgoingEvent[]): Promise<void> {
    await writeEvents(tx, clock, events);
    if (onEventsWritten) tx.afterCommit(onEventsWritten);
  }

  async function paymentOfOrder(orderId: string): Promise<PaymentRow | undefined> {
    return (await db.query<PaymentRow>(sql.paymentOfOrder, [orderId]))[0];
  }

  /** Records the capture once, whoever saw it first (webhook or close check); emits payment.succeeded. */
  async function recordCapture(tx: Tx, intent: PaymentIntent): Promise<boolean> {
    const now = clock.now();
    let [row] = await tx.query<{ id: string; order_id: string; user_id: string | null; amount: number; currency: string }>(sql.markSucceeded, [intent.id, now]);
    if (!row) {
      // No payment row (a crash between creating the intent and recording it): the intent itself is the record —
      // if it names one of our orders. Anything else (an intent made in the provider's dashboard, or by another
      // system on the account) has no order to pay: recorded, it would be a capture no order owns and nothing refunds.
      if (!isUuid(intent.orderId) || !(await orders.exists(tx, intent.orderId))) {
        log.warn({ intentId: intent.id, orderId: intent.orderId }, 'capture reported for an intent that is not ours; ignored');
        return false;
      }
      // Only an amount we could have asked for can be recorded; anything else is a malformed event, refused as one.
      if (!Number.isSafeInteger(intent.amount) || intent.amount <= 0) throw new AppError('validation_failed', 'The payment intent amount is not a positive integer.');
      [row] = await tx.query(sql.insertSucceededPayment, [randomUUID(), intent.orderId, intent.id, intent.amount, intent.currency.toUpperCase(), now]);
    }
    if (!row) return false;
    await emit(tx, [{ topic: PaymentTopics.succeeded, payload: { paymentId: row.id, orderId: row.order_id, userId: row.user_id, amount: row.amount, currency: row.currency } satisfies PaymentSucceeded }]);
    return true;
  }

  function unavailable(error: unknown): AppError {
    return new AppError('payment_unavailable', undefined, { retryAfterS: 2, cause: error });
  }

  function view(row: PaymentRow, hostedUrl: string): Payment {
    return { id: row.id, orderId: row.order_id, providerPaymentId: row.provider_intent_id, amount: row.amount, currency: row.currency, status: row.status, lastError: row.last_error, hostedUrl };
  }

  return {
    /** Starts (or resumes) paying for a pending order: one provider intent per order, its hosted page. */
    async payOrder(userId: string, orderId: string): Promise<Payment> {
      const order = await orders.getOrder(userId, orderId);
      if (order.status !== 'PENDING_PAYMENT') throw new AppError('invalid_state', `The order is ${order.status}.`);
      if (clock.now() >= order.expiresAt) throw new AppError('payment_window_closed');
      let intent: PaymentIntent;
      try {
        intent = await gateway.createIntent({ amount: order.totalAmount, currency: order.currency, orderId, idempotencyKey: `order-${orderId}` });
      } catch (error) {
        // Whatever the provider said stays in our logs; the buyer only learns to retry.
        log.error({ err: error, orderId }, 'payment provider refused to create an intent');
        throw unavailable(error);
      }
      // The provider call took time: the order may have been closed meanwhile, having found no
      // payment to settle. Recorded only while the order still awaits payment, under its lock.
      const recorded = await db.transaction(async (tx) => {
        if (!(await orders.lockPendingForPayment(tx, orderId))) return false;
        await tx.query(sql.insertPayment, [randomUUID(), orderId, userId, intent.id, order.totalAmount, order.currency, clock.now()]);
        return true;
      });
      if (!recorded) {
        await gateway.cancelIntent(intent.id).catch((error: unknown) => log.warn({ err: error, orderId, intentId: intent.id }, 'could not cancel the intent of an order closed during payment'));
        throw new AppError('payment_window_closed');
      }
      return view((await paymentOfOrder(orderId))!, intent.hostedUrl);
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
      let intent: PaymentIntent;
      try {
        intent = await gateway.retrieveIntent(payment.provider_intent_id);
      } catch (error) {
        if (error instanceof GatewayError && error.retryable) throw error;
        // The provider has no such intent (its records were lost): nothing can be paid through it.
        log.warn({ err: error, orderId, intentId: payment.provider_intent_id }, 'provider does not know the intent; closing as unpaid');
        await db.query(sql.markCanceled, [payment.provider_intent_id, clock.now()]);
        return 'unpaid';
      }
      if (intent.status !== 'succeeded' && intent.status !== 'canceled') {
        try {
          intent = await gateway.cancelIntent(intent.id);
        } catch (error) {
          if (error instanceof GatewayError && error.retryable) throw error;
          intent = await gateway.retrieveIntent(payment.provider_intent_id);
        }
      }
      if (intent.status === 'succeeded') {
        await db.transaction((tx) => recordCapture(tx, intent));
        return 'paid';
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
    },

    /** The money invariants of brief §6, given each order's status. */
    async audit(orderStatus: ReadonlyMap<string, string>, quiet: boolean): Promise<Array<{ check: string; message: string; ids: string[] }>> {
      const violations: Array<{ check: string; message: string; ids: string[] }> = [];
      const captures = new Map((await db.query<{ order_id: string; captures: number }>(sql.auditCaptures)).map((r) => [r.order_id, r.captures]));
      for (const [orderId, status] of orderStatus) {
        const n = captures.get(orderId) ?? 0;
        if ((status === 'PAID' || status === 'FULFILLED') && n !== 1) violations.push({ check: 'paid_order_has_one_capture', message: `order is ${status} with ${n} captures`, ids: [orderId] });
      }
      const refunded = new Set((await db.query<{ order_id: string }>(sql.auditRefunds)).map((r) => r.order_id));
      for (const row of await db.query<{ id: string; order_id: string }>(sql.succeededPayments)) {
        const status = orderStatus.get(row.order_id);
        if (!status) violations.push({ check: 'capture_has_order', message: 'a capture for an order that does not exist', ids: [row.id, row.order_id] });
        else if (quiet && (status === 'CANCELLED' || status === 'EXPIRED') && !refunded.has(row.order_id)) {
          violations.push({ check: 'closed_order_capture_refunded', message: `a capture for a ${status} order has no refund`, ids: [row.id, row.order_id] });
        }
      }
      for (const r of await db.query<{ id: string; order_id: string; amount: number; paid: number; payment_status: string }>(sql.auditRefunds)) {
        if (r.payment_status !== 'succeeded' || r.amount > r.paid) violations.push({ check: 'refund_matches_capture', message: `refund of ${r.amount} against a ${r.payment_status} payment of ${r.paid}`, ids: [r.id, r.order_id] });
      }
      return violations;
    },
  };
}

export type Payments = ReturnType<typeof createPayments>;
