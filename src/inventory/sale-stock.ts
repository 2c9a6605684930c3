import type { Tx } from '../platform/database/index.ts';
import type { GateAdjustment } from '../platform/gate/gate.ts';
import { AppError } from '../platform/errors.ts';
import { InventoryTopics, type StockRestocked } from './contracts.ts';
import type { InventoryContext } from './context.ts';
import type { StockAdjustment, StockRow } from './model.ts';
import * as sql from './sql.ts';

interface LockedRow {
  sale_item_id: string; initial: number; available: number; held: number; sold: number; written_off: number;
  per_user_limit: number; on_sale_from: Date; on_sale_until: Date;
}

/**
 * Locks the items' stock rows in the caller's transaction, in the order a purchase batch locks
 * them: a decision made after this (the sale has not started, so it may be edited) cannot race a
 * batch reserving these items.
 */
export async function lockStock(tx: Tx, saleItemIds: readonly string[]): Promise<StockRow[]> {
  const rows = await tx.query<LockedRow>(sql.lockStockRows, [[...saleItemIds].sort()]);
  return rows.map((r) => ({
    saleItemId: r.sale_item_id, initial: r.initial, available: r.available, held: r.held, sold: r.sold, writtenOff: r.written_off,
    perUserLimit: r.per_user_limit, onSaleFrom: r.on_sale_from, onSaleUntil: r.on_sale_until,
  }));
}

/**
 * New terms for items, in the catalog's transaction: units added or taken (initial and available
 * together), the limit and window replaced. Taking more than is available is refused. After commit
 * the gate follows, in place (admissions in flight stay counted), and units added clear the items'
 * sold-out flags in every process.
 */
export async function adjustStock(ctx: InventoryContext, tx: Tx, changes: readonly StockAdjustment[]): Promise<void> {
  if (changes.length === 0) return;
  const events = [];
  for (const c of changes) {
    const [row] = await tx.query<{ sale_item_id: string; available: number }>(sql.adjustStockRow, [c.saleItemId, c.delta, c.perUserLimit, c.startsAt, c.endsAt]);
    if (!row) throw new AppError('validation_failed', `Sale item ${c.saleItemId}: cannot take away more units than are available.`, { details: { saleItemId: c.saleItemId } });
    await tx.query(sql.adjustQuotaLimits, [c.saleItemId, c.perUserLimit]);
    if (c.delta > 0 && row.available === c.delta) events.push({ topic: InventoryTopics.restocked, payload: { saleItemId: c.saleItemId, available: row.available } satisfies StockRestocked });
  }
  if (events.length > 0) await ctx.emit(tx, events);
  tx.afterCommit(async () => {
    await ctx.gate.adjust(changes.map(toGateAdjustment));
    for (const c of changes) if (c.delta > 0) ctx.soldOut.clear(c.saleItemId);
  });
}

/** Takes items out of a sale that has not started: only an item nothing was taken from. After commit the gate forgets them. */
export async function withdrawStock(ctx: InventoryContext, tx: Tx, saleItemIds: readonly string[]): Promise<void> {
  if (saleItemIds.length === 0) return;
  const deleted = await tx.query<{ sale_item_id: string }>(sql.deleteUntouchedStock, [saleItemIds]);
  if (deleted.length !== saleItemIds.length) throw new AppError('validation_failed', 'An item some buyer already holds cannot be taken out of the sale.');
  await tx.query(sql.deleteQuotasOfItems, [saleItemIds]);
  tx.afterCommit(() => ctx.gate.remove(saleItemIds));
}

/** The cart holds of these items that no order took yet (a cancelled sale releases them). */
export async function cartHoldsOfItems(tx: Tx, saleItemIds: readonly string[]): Promise<string[]> {
  return (await tx.query<{ id: string }>(sql.cartHoldsOfItems, [saleItemIds])).map((r) => r.id);
}

function toGateAdjustment(c: StockAdjustment): GateAdjustment {
  return { saleItemId: c.saleItemId, availableDelta: c.delta, perUserLimit: c.perUserLimit, startsAt: c.startsAt.getTime(), endsAt: c.endsAt.getTime() };
}
