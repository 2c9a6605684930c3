import type { Clock } from '../platform/clock.ts';
import { countBy, type Database, type Tx } from '../platform/database/index.ts';
import type { Emit } from '../platform/broker/outbox.ts';
import type { Subscriber } from '../platform/broker/broker.ts';
import type { PaymentGateway } from '../platform/payment-provider/port.ts';
import type { Logger } from '../platform/logger.ts';
import { OrderLineCancelled, OrderRefundRequested, OrderTopics } from '../order/contracts.ts';
import { readPayload } from '../platform/broker/event-contract.ts';
import type { OrderRecords, OrderTerms, PaymentSettlement } from '../order/index.ts';
import { CaptureRejected, PaymentTopics, type CaptureRejection } from './contracts.ts';
import type { PaymentContext } from './context.ts';
import { payOrder, type Payment } from './pay.ts';
import { handleWebhook } from './webhook.ts';
import { settleBeforeClose } from './settle.ts';
import { refundLine, refundOrder } from './refund.ts';
import { refundRejectedCapture } from './capture.ts';
import { auditPayments, type PaymentViolation } from './audit.ts';
import { reconcileWithProvider, type Reconciliation, type RejectedCaptureRow } from './reconcile.ts';
import * as sql from './sql.ts';

export type { Payment } from './pay.ts';
export type { PaymentStatus } from './context.ts';
export type { Reconciliation } from './reconcile.ts';

/**
 * Payment: one provider intent per order, webhook intake, each capture applied once and only if it
 * matches its order (any other refunded), the close check's question to the provider, refunds, and
 * the reconciliation of it all with the provider's own records.
 */
export interface Payments extends PaymentSettlement {
  /** Starts (or resumes) paying for the buyer's pending order: its one intent and hosted page. */
  payOrder(userId: string, orderId: string, opts?: { returnUrl?: string }): Promise<Payment>;
  /** A provider webhook: verified, deduplicated by event id, applied once. */
  handleWebhook(rawBody: string, signature: string | undefined): Promise<{ duplicate: boolean }>;
  /** Refunds what is left of an order's capture (all of it unless lines were refunded), once. */
  refundOrder(orderId: string, reason: string, buyerId?: string | null): Promise<'refunded' | 'nothing_to_refund' | 'already_refunded'>;
  /** The money invariants the database alone can prove. */
  audit(orderTerms: ReadonlyMap<string, OrderTerms>, quiet: boolean): Promise<PaymentViolation[]>;
  /** Captures that paid nothing, by reason and refund state. */
  rejectedCaptures(): Promise<RejectedCaptureRow[]>;
  /** The database against the provider's intents and refunds (reconcile.ts). */
  reconcile(orderTerms: ReadonlyMap<string, OrderTerms>, opts: { quiet: boolean }): Promise<Reconciliation>;
  /** Payment's consumers: refunds order asks for (whole orders and cancelled lines), and refunds of rejected captures. */
  subscribe(broker: Subscriber): void;
  /** Payments and refunds per status (metrics; two grouped counts). */
  countByStatus(): Promise<{ payments: Record<string, number>; refunds: Record<string, number> }>;
}

/** What the payment use cases share (context.ts). */
export type PaymentsDeps = PaymentContext;

/** Wires the payment use cases (one file each) over one shared context. */
export function createPayments(deps: PaymentsDeps): Payments {
  const ctx: PaymentContext = { ...deps };
  return {
    payOrder: (userId, orderId, opts) => payOrder(ctx, userId, orderId, opts),
    handleWebhook: (rawBody, signature) => handleWebhook(ctx, rawBody, signature),
    settleBeforeClose: (orderId) => settleBeforeClose(ctx, orderId),
    hasOpenPayment: async (tx: Tx, orderId) => (await tx.query(sql.openPaymentOfOrder, [orderId])).length > 0,
    refundOrder: (orderId, reason, buyerId) => refundOrder(ctx, orderId, reason, buyerId),
    audit: (orderTerms, quiet) => auditPayments(ctx, orderTerms, quiet),
    rejectedCaptures: () => deps.db.query<RejectedCaptureRow>(sql.rejectedCaptures),
    reconcile: (orderTerms, opts) => reconcileWithProvider({ db: deps.db, gateway: deps.gateway, now: () => deps.clock.now() }, orderTerms, opts),
    countByStatus: async () => ({
      payments: await countBy(deps.db, 'select status as key, count(*) as n from payments group by status'),
      refunds: await countBy(deps.db, 'select status as key, count(*) as n from refunds group by status'),
    }),
    subscribe(broker) {
      broker.consumeSelfManaged('payment-refunds', [OrderTopics.refundRequested], async (message) => {
        const { orderId, reason, userId } = readPayload(OrderRefundRequested, message);
        // A payment recorded from the provider alone has no buyer; the order side names it.
        const outcome = await refundOrder(ctx, orderId, reason, userId || null);
        deps.log.info({ orderId, reason, outcome }, 'refund requested');
      });
      broker.consumeSelfManaged('payment-line-refunds', [OrderTopics.lineCancelled], async (message) => {
        const { orderId, saleItemId, holdId, amount, userId } = readPayload(OrderLineCancelled, message);
        const outcome = await refundLine(ctx, { orderId, holdId, amount, buyerId: userId || null });
        deps.log.info({ orderId, saleItemId, amount, outcome }, 'line refund');
      });
      broker.consumeSelfManaged('payment-rejected-captures', [PaymentTopics.captureRejected], async (message) => {
        await refundRejectedCapture(ctx, readPayload(CaptureRejected, message) as CaptureRejected);
      });
    },
  };
}
