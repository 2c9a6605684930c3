import type { Database } from '../platform/database/index.ts';
import type { PaymentGateway, PaymentIntent, Refund } from '../platform/payment-provider/port.ts';
import type { OrderTerms } from '../order/index.ts';
import * as sql from './sql.ts';


export interface RejectedCaptureRow {
  provider_intent_id: string; order_id: string; amount: number; currency: string; reason: string;
  status: 'refund_pending' | 'refunded' | 'not_captured'; provider_refund_id: string | null;
}

export interface Mismatch { check: string; message: string; ids: string[] }

export interface Reconciliation {
  ok: boolean;
  checkedAt: string;
  /** Provider intents that name an order, how many of them were captured, and the provider's refunds of them. */
  intents: number;
  captures: number;
  refunds: number;
  /** Per currency, in minor units: money received and refunded at the provider, and what the paid orders cost. */
  totals: Record<string, { received: number; refunded: number; paidOrders: number }>;
  /** Differences that work in flight explains (a webhook not yet applied, a refund not yet made); 0 in a quiet run. */
  unsettled: number;
  mismatches: Mismatch[];
}

export const isPaid = (status: string): boolean => status === 'PAID' || status === 'FULFILLED';

interface PaymentRecord { order_id: string; provider_intent_id: string; amount: number; currency: string; status: string }

/** Both sides' records, indexed, and what the checks found so far. */
interface Books {
  orders: ReadonlyMap<string, OrderTerms>;
  captured: PaymentIntent[];
  refunds: Refund[];
  refundedOf: Map<string, number>;
  intentById: Map<string, PaymentIntent>;
  paymentOfIntent: Map<string, PaymentRecord>;
  paymentOfOrder: Map<string, PaymentRecord>;
  rejected: RejectedCaptureRow[];
  rejectedOfIntent: Map<string, RejectedCaptureRow>;
  recordedRefunds: Array<{ provider_refund_id: string | null; amount: number; provider_intent_id: string }>;
  quiet: boolean;
  mismatches: Mismatch[];
  unsettled: number;
  totals: Reconciliation['totals'];
}

/**
 * Reconciliation against the provider's own records: every captured intent that names an order
 * pays exactly one paid order of the same amount and currency (refunded in part by what its
 * cancelled lines cost), or was refunded in full; every paid order has exactly one captured intent
 * not refunded in full; received − refunded = Σ paid orders less their cancelled lines, per
 * currency; every refund we recorded exists at the provider. `quiet` (no traffic in flight) makes
 * every difference a mismatch; otherwise a difference that in-flight work explains is counted as
 * unsettled, and the totals are only compared when nothing is.
 */
export async function reconcileWithProvider(
  deps: { db: Database; gateway: PaymentGateway; now: () => Date },
  orders: ReadonlyMap<string, OrderTerms>,
  { quiet }: { quiet: boolean },
): Promise<Reconciliation> {
  const checkedAt = deps.now().toISOString();
  let intents: PaymentIntent[];
  let refunds: Refund[];
  try {
    [intents, refunds] = await Promise.all([deps.gateway.listIntents(), deps.gateway.listRefunds()]);
  } catch (error) {
    const mismatch = { check: 'provider_reachable', message: `could not list the provider's intents and refunds: ${(error as Error).message}`, ids: [] };
    return { ok: false, checkedAt, intents: 0, captures: 0, refunds: 0, totals: {}, unsettled: 0, mismatches: [mismatch] };
  }
  const books = await openBooks(deps.db, orders, intents.filter((i) => i.orderId !== ''), refunds, quiet);
  checkCaptures(books);
  checkPaidOrders(books);
  checkRecordedRefunds(books);
  if (quiet || books.unsettled === 0) checkTotals(books);
  const ours = books.intentById.size;
  const refundsOfOurs = refunds.filter((r) => books.intentById.has(r.paymentIntentId)).length;
  return { ok: books.mismatches.length === 0, checkedAt, intents: ours, captures: books.captured.length, refunds: refundsOfOurs, totals: books.totals, unsettled: books.unsettled, mismatches: books.mismatches };
}

async function openBooks(db: Database, orders: ReadonlyMap<string, OrderTerms>, ours: PaymentIntent[], refunds: Refund[], quiet: boolean): Promise<Books> {
  const payments = await db.query<PaymentRecord>(sql.allPayments);
  const rejected = await db.query<RejectedCaptureRow>(sql.rejectedCaptures);
  return {
    orders, refunds, quiet,
    captured: ours.filter((i) => i.status === 'succeeded'),
    refundedOf: sumBy(refunds.filter((r) => r.status === 'succeeded'), (r) => r.paymentIntentId, (r) => r.amount),
    intentById: new Map(ours.map((i) => [i.id, i])),
    paymentOfIntent: new Map(payments.map((p) => [p.provider_intent_id, p])),
    paymentOfOrder: new Map(payments.map((p) => [p.order_id, p])),
    rejected,
    rejectedOfIntent: new Map(rejected.map((r) => [r.provider_intent_id, r])),
    recordedRefunds: await db.query(sql.recordedRefunds),
    mismatches: [], unsettled: 0, totals: {},
  };
}

/** A difference in-flight work explains is a mismatch only when nothing is in flight. */
function inFlight(books: Books, mismatch: Mismatch): void {
  if (books.quiet) books.mismatches.push(mismatch);
  else books.unsettled++;
}

function totalOf(books: Books, currency: string): Reconciliation['totals'][string] {
  return (books.totals[currency.toUpperCase()] ??= { received: 0, refunded: 0, paidOrders: 0 });
}

/** Every captured intent that names an order pays one paid order exactly, or was refunded in full. */
function checkCaptures(books: Books): void {
  for (const intent of books.captured) {
    const refunded = books.refundedOf.get(intent.id) ?? 0;
    totalOf(books, intent.currency).received += intent.amount;
    totalOf(books, intent.currency).refunded += refunded;
    if (refunded === intent.amount) continue;
    const ids = [intent.id, intent.orderId];
    const payment = books.paymentOfIntent.get(intent.id);
    const order = payment ? books.orders.get(payment.order_id) : undefined;
    if (payment?.status === 'succeeded' && order && isPaid(order.status)) {
      // Refunded in part is right for a paid order whose lines were cancelled (checkPaidOrders compares the amounts).
      if (mismatchOf(intent, costOf(order))) books.mismatches.push({ check: 'capture_matches_order', message: `a capture of ${intent.amount} ${intent.currency} pays an order of ${order.totalAmount} ${order.currency}`, ids: [...ids, payment.order_id] });
      continue;
    }
    if (refunded > 0) {
      // A closed order refunded in part: the rest is on its way (an admin cancel after a line refund), or missing.
      if (order && !isPaid(order.status)) inFlight(books, { check: 'capture_refunded_in_full', message: `a ${order.status} order's intent refunded ${refunded} of ${intent.amount}`, ids });
      else books.mismatches.push({ check: 'capture_refunded_in_full', message: `intent refunded ${refunded} of ${intent.amount}`, ids });
      continue;
    }
    checkUnpaidCapture(books, intent, payment, order);
  }
}

/** A capture that pays no paid order: refunded (or about to be), or still being applied — else a mismatch. */
function checkUnpaidCapture(books: Books, intent: PaymentIntent, payment: PaymentRecord | undefined, order: OrderTerms | undefined): void {
  const ids = [intent.id, intent.orderId];
  const rejection = books.rejectedOfIntent.get(intent.id);
  if (rejection?.status === 'refunded' || rejection?.status === 'not_captured') {
    books.mismatches.push({ check: 'capture_refunded_in_full', message: `a rejected capture recorded as ${rejection.status.replace('_', ' ')} is captured and not refunded at the provider`, ids });
  } else if (rejection) {
    inFlight(books, { check: 'capture_refunded_in_full', message: `a rejected capture (${rejection.reason}) is not refunded yet`, ids });
  } else if (!payment) {
    inFlight(books, { check: 'capture_recorded', message: 'the provider captured an intent the database has no record of', ids });
  } else {
    inFlight(books, { check: 'capture_pays_its_order', message: `a capture whose payment is ${payment.status} and order ${order?.status ?? 'missing'} is neither paid nor refunded`, ids: [...ids, payment.order_id] });
  }
}

/** Every paid order has exactly one captured, unrefunded intent at the provider, of its total. */
function checkPaidOrders(books: Books): void {
  const unrefunded = new Map<string, number>();
  for (const intent of books.captured) {
    const orderId = intent.orderId.toLowerCase();
    if ((books.refundedOf.get(intent.id) ?? 0) < intent.amount) unrefunded.set(orderId, (unrefunded.get(orderId) ?? 0) + 1);
  }
  for (const [orderId, order] of books.orders) {
    if (!isPaid(order.status)) continue;
    totalOf(books, order.currency).paidOrders += order.totalAmount - order.refundedAmount;
    const payment = books.paymentOfOrder.get(orderId);
    const intent = payment ? books.intentById.get(payment.provider_intent_id) : undefined;
    if (!payment || payment.status !== 'succeeded' || !intent || intent.status !== 'succeeded') {
      books.mismatches.push({ check: 'paid_order_captured', message: `a ${order.status} order whose payment is ${payment?.status ?? 'missing'} and whose intent at the provider is ${intent?.status ?? 'missing'}`, ids: [orderId, ...(payment ? [payment.provider_intent_id] : [])] });
    } else if ((books.refundedOf.get(intent.id) ?? 0) > order.refundedAmount) {
      books.mismatches.push({ check: 'paid_order_not_refunded', message: `a ${order.status} order whose capture was refunded ${books.refundedOf.get(intent.id)} at the provider; its cancelled lines cost ${order.refundedAmount}`, ids: [orderId, intent.id] });
    } else if ((books.refundedOf.get(intent.id) ?? 0) < order.refundedAmount) {
      inFlight(books, { check: 'cancelled_lines_refunded', message: `a ${order.status} order whose cancelled lines cost ${order.refundedAmount}, refunded ${books.refundedOf.get(intent.id) ?? 0} at the provider`, ids: [orderId, intent.id] });
    } else if (mismatchOf(payment, costOf(order))) {
      books.mismatches.push({ check: 'capture_matches_order', message: `a recorded capture of ${payment.amount} ${payment.currency} for an order of ${order.totalAmount} ${order.currency}`, ids: [orderId, intent.id] });
    } else if ((unrefunded.get(orderId) ?? 0) !== 1) {
      inFlight(books, { check: 'paid_order_captured_once', message: `a ${order.status} order with ${unrefunded.get(orderId) ?? 0} unrefunded captures at the provider`, ids: [orderId] });
    }
  }
}

/** Every refund the database recorded exists at the provider, of the same intent and amount. */
function checkRecordedRefunds(books: Books): void {
  const providerRefunds = new Map(books.refunds.map((r) => [r.id, r]));
  const recorded = [
    ...books.recordedRefunds.map((r) => ({ id: r.provider_refund_id, intentId: r.provider_intent_id, amount: r.amount })),
    ...books.rejected.filter((r) => r.status === 'refunded').map((r) => ({ id: r.provider_refund_id, intentId: r.provider_intent_id, amount: r.amount })),
  ];
  for (const refund of recorded) {
    const atProvider = refund.id ? providerRefunds.get(refund.id) : undefined;
    if (!atProvider || atProvider.paymentIntentId !== refund.intentId || atProvider.amount !== Number(refund.amount) || atProvider.status !== 'succeeded') {
      books.mismatches.push({ check: 'refund_at_provider', message: `a recorded refund of ${refund.amount} the provider ${atProvider ? `has as ${atProvider.amount} ${atProvider.status}` : 'does not have'}`, ids: [refund.intentId, ...(refund.id ? [refund.id] : [])] });
    }
  }
}

/** Money received − refunded = what the paid orders cost, per currency. */
function checkTotals(books: Books): void {
  for (const [currency, t] of Object.entries(books.totals)) {
    if (t.received - t.refunded !== t.paidOrders) {
      books.mismatches.push({ check: 'money_balances', message: `${currency}: received ${t.received} − refunded ${t.refunded} ≠ paid orders ${t.paidOrders}`, ids: [] });
    }
  }
}

/** An amount in minor units and its currency (any case). */
export interface Money { amount: number; currency: string }

/** What an order costs, as the money a capture must equal. */
export function costOf(order: OrderTerms): Money {
  return { amount: order.totalAmount, currency: order.currency };
}

/** Why a capture cannot pay what it was meant for: its amount and currency must equal the order's (currencies in any case). */
export function mismatchOf(paid: Money, expected: Money): 'amount_mismatch' | 'currency_mismatch' | undefined {
  if (Number(paid.amount) !== Number(expected.amount)) return 'amount_mismatch';
  if (paid.currency.toUpperCase() !== expected.currency.toUpperCase()) return 'currency_mismatch';
  return undefined;
}

function sumBy<T>(items: readonly T[], key: (item: T) => string, value: (item: T) => number): Map<string, number> {
  const sums = new Map<string, number>();
  for (const item of items) sums.set(key(item), (sums.get(key(item)) ?? 0) + value(item));
  return sums;
}

/** The counts in a line: what was compared, and the money on both sides. */
export function reconciliationSummary(report: Reconciliation): string {
  const money = Object.entries(report.totals).map(([c, t]) => `${c} received ${t.received}, refunded ${t.refunded}, paid orders ${t.paidOrders}`).join('; ');
  return `${report.captures} captures of ${report.intents} intents, ${report.refunds} refunds${money ? ` (${money})` : ''}${report.unsettled ? `; ${report.unsettled} unsettled (in flight)` : ''}`;
}

/** A head line, then one line per mismatch: for the CLI and the worker's log. */
export function formatReconciliation(report: Reconciliation): string {
  const head = report.ok ? `reconciliation OK: ${reconciliationSummary(report)}` : `reconciliation FAILED: ${report.mismatches.length} mismatch(es); ${reconciliationSummary(report)}`;
  return [head, ...report.mismatches.map((m) => `  [${m.check}] ${m.message}${m.ids.length ? ` (${m.ids.join(', ')})` : ''}`)].join('\n');
}
