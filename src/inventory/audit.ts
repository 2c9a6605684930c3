import type { StockGate } from '../platform/gate/gate.ts';
import type { InventoryContext } from './context.ts';
import type { InventoryViolation, StockAudit, StockTotals } from './model.ts';
import * as sql from './sql.ts';

/** A stock row with the units its holds account for, by hold status. */
interface StockAuditRow {
  sale_item_id: string;
  initial: number;
  available: number;
  held: number;
  sold: number;
  written_off: number;
  holds_held: number;
  holds_sold: number;
  holds_written_off: number;
}

/**
 * Checks inventory's invariants: per item the stock row balances, agrees with its holds and is
 * never oversold; every buyer's quota matches their holds and limit; no order hold lacks its
 * order; no hold stays held past expiry + `holdGraceMs`. With `compareGate`, also that the gate
 * agrees with the database (only meaningful when quiet).
 */
export async function auditStock(ctx: InventoryContext, compareGate: boolean, holdGraceMs: number): Promise<StockAudit> {
  const { db, gate } = ctx;
  const violations: InventoryViolation[] = [];
  let oversoldUnits = 0;
  const totals: StockTotals = { initial: 0, available: 0, held: 0, sold: 0, writtenOff: 0 };
  const rows = await db.query<StockAuditRow>(sql.auditStock);
  for (const r of rows) {
    addToTotals(totals, r);
    violations.push(...stockRowViolations(r));
    oversoldUnits += Math.max(0, oversoldBy(r));
    if (compareGate) violations.push(...(await gateStockViolations(gate, r)));
  }
  violations.push(...(await quotaViolations(ctx)));
  if (compareGate) violations.push(...(await gateQuotaViolations(ctx)));
  violations.push(...(await holdViolations(ctx, holdGraceMs)));
  return { items: rows.length, violations, oversoldUnits, totals };
}

function addToTotals(totals: StockTotals, r: StockAuditRow): void {
  totals.initial += r.initial;
  totals.available += r.available;
  totals.held += r.held;
  totals.sold += r.sold;
  totals.writtenOff += r.written_off;
}

/** Units the item's holds took beyond its initial stock. */
function oversoldBy(r: StockAuditRow): number {
  return r.holds_held + r.holds_sold + r.holds_written_off - r.initial;
}

/** One item's stock row on its own and against its holds. */
function stockRowViolations(r: StockAuditRow): InventoryViolation[] {
  const violations: InventoryViolation[] = [];
  const id = [r.sale_item_id];
  if (r.available < 0 || r.held < 0 || r.sold < 0) violations.push({ check: 'stock_non_negative', message: `negative stock term: available=${r.available} held=${r.held} sold=${r.sold}`, ids: id });
  if (r.initial !== r.available + r.held + r.sold + r.written_off) violations.push({ check: 'stock_balanced', message: `initial ${r.initial} != available ${r.available} + held ${r.held} + sold ${r.sold} + written off ${r.written_off}`, ids: id });
  if (r.written_off !== r.holds_written_off) violations.push({ check: 'written_off_matches_holds', message: `stock row says written_off=${r.written_off}, holds say ${r.holds_written_off}`, ids: id });
  if (r.held !== r.holds_held) violations.push({ check: 'held_matches_holds', message: `stock row says held=${r.held}, holds say ${r.holds_held}`, ids: id });
  if (r.sold !== r.holds_sold) violations.push({ check: 'sold_matches_holds', message: `stock row says sold=${r.sold}, holds say ${r.holds_sold}`, ids: id });
  const oversold = oversoldBy(r);
  if (oversold > 0) violations.push({ check: 'not_oversold', message: `oversold by ${oversold}`, ids: id });
  return violations;
}

async function gateStockViolations(gate: StockGate, r: StockAuditRow): Promise<InventoryViolation[]> {
  const gateAvailable = await gate.available(r.sale_item_id);
  if (gateAvailable === r.available) return [];
  return [{ check: 'gate_matches_db', message: `gate says available=${gateAvailable}, database ${r.available}`, ids: [r.sale_item_id] }];
}

/** Every buyer's quota equals the units their holds took, within the item's limit. */
async function quotaViolations({ db }: InventoryContext): Promise<InventoryViolation[]> {
  const rows = await db.query<{ sale_item_id: string; user_id: string; quota: number; taken: number; per_user_limit: number | null }>(sql.auditQuotas);
  return rows.map((q) => ({ check: 'per_user_limit', message: `buyer quota ${q.quota}, holds ${q.taken}, limit ${q.per_user_limit}`, ids: [q.sale_item_id, q.user_id] }));
}

async function gateQuotaViolations({ db, gate }: InventoryContext): Promise<InventoryViolation[]> {
  const violations: InventoryViolation[] = [];
  for (const q of await db.query<{ sale_item_id: string; user_id: string; quantity: number }>(sql.allQuotas)) {
    const inGate = await gate.quota(q.sale_item_id, q.user_id);
    if (inGate !== q.quantity) violations.push({ check: 'gate_quota_matches_db', message: `gate quota ${inGate}, database ${q.quantity}`, ids: [q.sale_item_id, q.user_id] });
  }
  return violations;
}

/** Every order hold has its order; no hold is still held past its expiry + the grace. */
async function holdViolations({ db, clock }: InventoryContext, holdGraceMs: number): Promise<InventoryViolation[]> {
  const violations: InventoryViolation[] = [];
  const orphans = await db.query<{ id: string }>(sql.orphanOrderHolds);
  if (orphans.length > 0) violations.push({ check: 'hold_has_order', message: `${orphans.length} order holds without an order`, ids: orphans.map((o) => o.id) });
  const stale = await db.query<{ id: string }>(sql.staleHolds, [new Date(clock.now().getTime() - holdGraceMs)]);
  if (stale.length > 0) violations.push({ check: 'no_stale_holds', message: `${stale.length} holds still held past expiry + grace`, ids: stale.map((h) => h.id) });
  return violations;
}
