import type { OrderTerms } from '../order/index.ts';
import type { PaymentContext } from './context.ts';
import { costOf, isPaid, mismatchOf, type RejectedCaptureRow } from './reconcile.ts';
import * as sql from './sql.ts';

export interface PaymentViolation { check: string; message: string; ids: string[] }

/** The money invariants the database alone can prove, given each order's status and total. */
export async function auditPayments({ db }: Pick<PaymentContext, 'db'>, orderTerms: ReadonlyMap<string, OrderTerms>, quiet: boolean): Promise<PaymentViolation[]> {
  const violations: PaymentViolation[] = [];
  const captures = new Map((await db.query<{ order_id: string; captures: number }>(sql.auditCaptures)).map((r) => [r.order_id, Number(r.captures)]));
  for (const [orderId, { status }] of orderTerms) {
    const n = captures.get(orderId) ?? 0;
    if (isPaid(status) && n !== 1) violations.push({ check: 'paid_order_has_one_capture', message: `order is ${status} with ${n} captures`, ids: [orderId] });
  }
  const refunds = await db.query<{ id: string; order_id: string; amount: string; paid: string; payment_status: string }>(sql.auditRefunds);
  const refundedOf = new Map(refunds.map((r) => [r.order_id, Number(r.amount)]));
  for (const row of await db.query<{ id: string; order_id: string; amount: number; currency: string }>(sql.succeededPayments)) {
    const order = orderTerms.get(row.order_id);
    const refunded = refundedOf.get(row.order_id) ?? 0;
    if (!order) violations.push({ check: 'capture_has_order', message: 'a capture for an order that does not exist', ids: [row.id, row.order_id] });
    else if (mismatchOf(row, costOf(order))) {
      violations.push({ check: 'capture_matches_order', message: `a capture of ${row.amount} ${row.currency} for an order of ${order.totalAmount} ${order.currency}`, ids: [row.id, row.order_id] });
    } else if (quiet && (order.status === 'CANCELLED' || order.status === 'EXPIRED') && refunded < Number(row.amount)) {
      violations.push({ check: 'closed_order_capture_refunded', message: `a capture of ${row.amount} for a ${order.status} order has ${refunded} refunded`, ids: [row.id, row.order_id] });
    } else if (quiet && isPaid(order.status) && refunded !== order.refundedAmount) {
      violations.push({ check: 'cancelled_lines_refunded', message: `a ${order.status} order whose cancelled lines cost ${order.refundedAmount} has ${refunded} refunded`, ids: [row.id, row.order_id] });
    }
  }
  for (const r of refunds) {
    if (r.payment_status !== 'succeeded' || Number(r.amount) > Number(r.paid)) violations.push({ check: 'refund_matches_capture', message: `refunds of ${r.amount} against a ${r.payment_status} payment of ${r.paid}`, ids: [r.id, r.order_id] });
  }
  if (quiet) {
    const unrefunded = (await db.query<RejectedCaptureRow>(sql.rejectedCaptures)).filter((r) => r.status === 'refund_pending');
    if (unrefunded.length > 0) {
      violations.push({ check: 'rejected_capture_refunded', message: `${unrefunded.length} rejected captures not yet refunded`, ids: unrefunded.map((r) => r.provider_intent_id) });
    }
  }
  return violations;
}
