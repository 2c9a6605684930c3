import type { Broker } from '../platform/broker/broker.ts';
import type { Inventory, StockTotals } from '../inventory/index.ts';
import type { Orders } from '../order/index.ts';
import type { Catalog } from '../catalog/index.ts';
import type { Payments } from '../payment/index.ts';
import type { Fulfillment } from '../fulfillment/index.ts';
import { reconciliationSummary, type Reconciliation } from '../payment/reconcile.ts';

export interface Violation {
  check: string;
  message: string;
  ids: string[];
}

export interface AuditReport {
  ok: boolean;
  checkedAt: string;
  items: number;
  /** Units held or sold beyond the initial stock, summed over items (0 unless `not_oversold` fails). */
  oversoldUnits: number;
  /** Units over every sale item, by state. */
  stock: StockTotals;
  /** Money: the reconciliation with the provider, and the captures that paid nothing (refunded), by reason. */
  money: { reconciliation: Reconciliation; rejectedCaptures: Record<string, { refunded: number; refundPending: number; notCaptured: number }> };
  violations: Violation[];
}

export interface AuditDeps {
  inventory: Inventory;
  orders: Orders;
  payments: Payments;
  fulfillment: Fulfillment;
  /** The sales (refreshed before the look): each item's stock against inventory, cancelled sales against order. */
  catalog: Pick<Catalog, 'refresh' | 'listFlashSales'>;
  broker: Broker;
  now: () => Date;
  /** Holds and pending orders older than their deadline by more than this are stuck. */
  graceMs: number;
}

/**
 * The invariants of the whole system (docs/architecture.md, "Invariants: the audit"), composed from each component's own
 * audit. `quiet` means no traffic is in flight: only then must the gate equal the database and
 * every message be delivered.
 */
export async function runAudit({ inventory, orders, payments, fulfillment, catalog, broker, now, graceMs }: AuditDeps, opts: { quiet: boolean }): Promise<AuditReport> {
  const stock = await inventory.audit(opts.quiet, graceMs);
  const terms = await orders.terms();
  const reconciliation = await payments.reconcile(terms, { quiet: opts.quiet });
  const violations: Violation[] = [
    ...stock.violations, ...(await orders.audit()), ...(await payments.audit(terms, opts.quiet)),
    ...(await fulfillment.audit(terms, opts.quiet)),
    ...reconciliation.mismatches.map((m) => ({ ...m, check: `reconcile:${m.check}` })),
    ...(await saleViolations(catalog, inventory, orders, opts.quiet)),
  ];
  const stats = await broker.stats();
  if (stats.deadLetters > 0) violations.push({ check: 'no_dead_letters', message: `${stats.deadLetters} dead-lettered messages need attention (flashsale dlq list)`, ids: [] });
  if (opts.quiet && (stats.outboxPending > 0 || stats.deliveriesPending > 0)) {
    violations.push({ check: 'events_delivered', message: `${stats.outboxPending} outbox rows and ${stats.deliveriesPending} deliveries still pending`, ids: [] });
  }
  const rejectedCaptures: AuditReport['money']['rejectedCaptures'] = {};
  for (const r of await payments.rejectedCaptures()) {
    const counts = (rejectedCaptures[r.reason] ??= { refunded: 0, refundPending: 0, notCaptured: 0 });
    if (r.status === 'refunded') counts.refunded++;
    else if (r.status === 'not_captured') counts.notCaptured++;
    else counts.refundPending++;
  }
  return {
    ok: violations.length === 0, checkedAt: now().toISOString(), items: stock.items, oversoldUnits: stock.oversoldUnits, stock: stock.totals,
    money: { reconciliation, rejectedCaptures }, violations,
  };
}

/**
 * Sale management's invariants: every sale item's stock (catalog) equals its initial stock
 * (inventory) — an edit or added stock moves both in one transaction; and, once quiet, a cancelled
 * sale has no order still awaiting payment.
 */
async function saleViolations(catalog: AuditDeps['catalog'], inventory: Inventory, orders: Orders, quiet: boolean): Promise<Violation[]> {
  await catalog.refresh();
  const sales = catalog.listFlashSales();
  const items = sales.flatMap((s) => s.items);
  const initial = await inventory.initialOf(items.map((i) => i.id));
  const violations: Violation[] = [];
  const off = items.filter((i) => initial.has(i.id) && initial.get(i.id) !== i.stock);
  if (off.length > 0) violations.push({ check: 'sale_stock_matches_inventory', message: `${off.length} sale items whose stock differs from their initial stock`, ids: off.map((i) => i.id) });
  if (quiet) {
    const pending = await orders.pendingOfSales(sales.filter((s) => s.cancelledAt !== null).map((s) => s.id));
    if (pending.length > 0) violations.push({ check: 'cancelled_sale_orders_closed', message: `${pending.length} orders of cancelled sales still await payment`, ids: pending });
  }
  return violations;
}

/** A human-readable rendering for the CLI. */
export function formatAudit(report: AuditReport): string {
  const head = report.ok ? `audit OK: ${report.items} sale items balanced, money reconciled with the provider, no violations` : `audit FAILED: ${report.violations.length} violation(s)`;
  const lines = report.violations.map((v) => `  [${v.check}] ${v.message}${v.ids.length ? ` (${v.ids.slice(0, 5).join(', ')}${v.ids.length > 5 ? ', …' : ''})` : ''}`);
  const money = `money: ${reconciliationSummary(report.money.reconciliation)}`;
  const rejected = Object.entries(report.money.rejectedCaptures).map(([reason, n]) => `${reason} ${n.refunded} refunded${n.refundPending ? `, ${n.refundPending} refund pending` : ''}${n.notCaptured ? `, ${n.notCaptured} never captured at the provider` : ''}`);
  return [head, `  ${money}`, ...(rejected.length ? [`  rejected captures: ${rejected.join('; ')}`] : []), ...lines].join('\n');
}
