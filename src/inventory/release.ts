import type { Tx } from '../platform/database/index.ts';
import type { OutgoingEvent } from '../platform/broker/outbox.ts';
import { InventoryTopics, type StockSold, type StockReleased, type StockRestocked } from './contracts.ts';
import type { InventoryContext } from './context.ts';
import { quotaDeltas, sumBy, toReleased, type HoldRow, type ReleasedHold, type StockLeft } from './model.ts';
import * as sql from './sql.ts';

/** Releases every still-held unit of an order (cancel, expiry). Idempotent: released holds stay released. */
export async function releaseOrder(ctx: InventoryContext, tx: Tx, orderId: string, reason: string): Promise<ReleasedHold[]> {
  const rows = await tx.query<HoldRow>(sql.releaseHoldsOfOrder, [orderId, ctx.clock.now(), reason]);
  return giveBack(ctx, tx, rows.map(toReleased), reason);
}

/** Releases the named holds that are still held (cart removal, expired cart holds). */
export async function releaseHolds(ctx: InventoryContext, tx: Tx, holdIds: readonly string[], reason: string): Promise<ReleasedHold[]> {
  const rows = await tx.query<HoldRow>(sql.releaseHoldsById, [holdIds, ctx.clock.now(), reason]);
  return giveBack(ctx, tx, rows.map(toReleased), reason);
}

/** A cart hold not checked out by its expiry goes back on sale (its `stock.hold_expiry` message; the sweeper is the backstop). */
export async function releaseExpiredCartHold(ctx: InventoryContext, tx: Tx, holdId: string): Promise<void> {
  const rows = await tx.query<HoldRow>(sql.releaseExpiredCartHold, [holdId, ctx.clock.now()]);
  await giveBack(ctx, tx, rows.map(toReleased), 'expired');
}

/** The order was paid: its held units become sold. Idempotent. */
export async function sellOrder({ emit }: InventoryContext, tx: Tx, orderId: string): Promise<ReleasedHold[]> {
  const rows = (await tx.query<HoldRow>(sql.sellHoldsOfOrder, [orderId])).map(toReleased);
  if (rows.length === 0) return rows;
  const perItem = sumBy(rows, (h) => h.saleItemId);
  await tx.query(sql.moveHeldToSold, [[...perItem.keys()], [...perItem.values()]]);
  await emit(tx, rows.map((h) => ({ topic: InventoryTopics.sold, payload: { holdId: h.holdId, orderId, saleItemId: h.saleItemId, quantity: h.quantity } satisfies StockSold })));
  return rows;
}

/**
 * A paid order was cancelled by an admin: its sold units go back on sale (`restock`, the
 * buyer's quota freed) or are written off (kept out of sale, still accounted for, and still
 * counted against the buyer's limit, since the gate's quota and available move together).
 */
export async function unsellOrder(ctx: InventoryContext, tx: Tx, orderId: string, restock: boolean): Promise<ReleasedHold[]> {
  const reason = restock ? 'admin_cancel_restock' : 'admin_cancel_write_off';
  const rows = (await tx.query<HoldRow>(sql.unsellHoldsOfOrder, [orderId, restock ? 'released' : 'written_off', ctx.clock.now(), reason])).map(toReleased);
  return unsold(ctx, tx, rows, restock, reason);
}

/** A paid order's line was cancelled by its merchant: the named sold holds go back on sale (`restock`) or are written off. */
export async function unsellHolds(ctx: InventoryContext, tx: Tx, holdIds: readonly string[], restock: boolean): Promise<ReleasedHold[]> {
  const reason = restock ? 'line_cancel_restock' : 'line_cancel_write_off';
  const rows = (await tx.query<HoldRow>(sql.unsellHoldsById, [holdIds, restock ? 'released' : 'written_off', ctx.clock.now(), reason])).map(toReleased);
  return unsold(ctx, tx, rows, restock, reason);
}

async function unsold(ctx: InventoryContext, tx: Tx, rows: ReleasedHold[], restock: boolean, reason: string): Promise<ReleasedHold[]> {
  if (rows.length === 0) return rows;
  if (!restock) {
    const perItem = sumBy(rows, (h) => h.saleItemId);
    await tx.query(sql.writeOffSold, [[...perItem.keys()], [...perItem.values()]]);
    return rows;
  }
  return backOnSale(ctx, tx, rows, reason, sql.restockSold);
}

/** Releases held units: back on sale. */
function giveBack(ctx: InventoryContext, tx: Tx, released: ReleasedHold[], reason: string): Promise<ReleasedHold[]> {
  return backOnSale(ctx, tx, released, reason, sql.giveBackStock);
}

/**
 * Units back on sale: the stock update (from held or from sold), the buyer quotas, the released and
 * restocked events, and the gate re-opened after commit.
 */
async function backOnSale(ctx: InventoryContext, tx: Tx, units: ReleasedHold[], reason: string, stockUpdate: string): Promise<ReleasedHold[]> {
  if (units.length === 0) return units;
  const perItem = sumBy(units, (h) => h.saleItemId);
  const after = await tx.query<StockLeft>(stockUpdate, [[...perItem.keys()], [...perItem.values()]]);
  const quotas = quotaDeltas(units);
  await tx.query(sql.reduceQuotas, [quotas.itemIds, quotas.userIds, quotas.quantities]);
  await ctx.emit(tx, [...releasedEvents(units, reason), ...restockedEvents(after, perItem)]);
  tx.afterCommit(() => reopenGate(ctx, units));
  return units;
}

function releasedEvents(units: readonly ReleasedHold[], reason: string): OutgoingEvent[] {
  return units.map((h) => ({
    topic: InventoryTopics.released,
    payload: { holdId: h.holdId, orderId: h.orderId, saleItemId: h.saleItemId, userId: h.userId, quantity: h.quantity, reason } satisfies StockReleased,
  }));
}

/** `stock.restocked` for each item that had nothing left before these units came back. */
function restockedEvents(after: readonly StockLeft[], perItem: ReadonlyMap<string, number>): OutgoingEvent[] {
  return after
    .filter((row) => row.available === perItem.get(row.sale_item_id))
    .map((row) => ({ topic: InventoryTopics.restocked, payload: { saleItemId: row.sale_item_id, available: row.available } satisfies StockRestocked }));
}

/** After commit: the units go back to the gate and the items' sold-out flags are cleared, in every process. */
async function reopenGate({ gate, soldOut }: InventoryContext, units: readonly ReleasedHold[]): Promise<void> {
  for (const h of units) await gate.release(h.userId, [{ saleItemId: h.saleItemId, quantity: h.quantity }]);
  for (const saleItemId of new Set(units.map((h) => h.saleItemId))) soldOut.clear(saleItemId);
}
