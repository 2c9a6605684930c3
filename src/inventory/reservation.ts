import { randomUUID } from 'node:crypto';
import type { Tx } from '../platform/database/index.ts';
import type { OutgoingEvent } from '../platform/broker/outbox.ts';
import { InventoryTopics, type HoldExpiry, type StockReserved, type StockSoldOut } from './contracts.ts';
import type { InventoryContext } from './context.ts';
import { quotaDeltas, quotaKey, sumBy, type Hold, type ReserveRequest, type ReserveResult, type StockLeft } from './model.ts';
import * as sql from './sql.ts';

/** The locked stock rows and quotas of a batch, updated as its requests are decided one after another. */
interface Ledger {
  available: Map<string, number>;
  /** Each item's stock (units added included): a sell-out is named by it (`stock.sold_out`). */
  initial: Map<string, number>;
  limits: Map<string, number>;
  /** Units per buyer and item (`quotaKey`). */
  quota: Map<string, number>;
  /** Items whose window does not hold the batch's `now`: edited or cancelled after the gate admitted. */
  closed: Set<string>;
}

/** A hold decided in this batch, with what its row needs. */
type NewHold = Hold & { userId: string; kind: string; orderId: string | null; expiresAt: Date };

/**
 * Writes the holds of a group-commit batch inside its transaction. The database re-decides every
 * request under row locks (the "double check"): a wrong gate can make it refuse, never oversell.
 */
export async function reserve(ctx: InventoryContext, tx: Tx, requests: readonly ReserveRequest[]): Promise<ReserveResult[]> {
  const ledger = await lockLedger(tx, requests, () => ctx.clock.now());
  const results: ReserveResult[] = [];
  const holds: NewHold[] = [];
  for (const request of requests) {
    const refusal = refusalOf(ledger, request);
    if (refusal) {
      results.push(refusal);
      continue;
    }
    const mine = take(ledger, request);
    holds.push(...mine.map((h) => ({ ...h, userId: request.userId, kind: request.kind, orderId: request.orderId, expiresAt: request.expiresAt })));
    results.push({ ok: true, holds: mine });
  }
  if (holds.length === 0) return results;
  await writeHolds(ctx, tx, holds, ledger);
  return results;
}

/** Locks the batch's stock rows and its buyers' quotas (in a fixed order, see sql.ts) and reads them. */
async function lockLedger(tx: Tx, requests: readonly ReserveRequest[], clock: () => Date): Promise<Ledger> {
  const itemIds = [...new Set(requests.flatMap((r) => r.lines.map((l) => l.saleItemId)))].sort();
  const pairKeys = [...new Set(requests.flatMap((r) => r.lines.map((l) => quotaKey(l.saleItemId, r.userId))))];
  const pairs = pairKeys.map((k) => k.split('|') as [string, string]);
  // Sent together (one round trip), stock first: the lock order stays the one sql.ts fixes.
  const [stockRows, quotaRows] = await Promise.all([
    tx.query<{ sale_item_id: string; available: number; initial: number; per_user_limit: number; on_sale_from: Date; on_sale_until: Date }>(sql.lockStockItems, [itemIds]),
    tx.query<{ sale_item_id: string; user_id: string; quantity: number }>(sql.lockQuotas, [pairs.map((p) => p[0]), pairs.map((p) => p[1])]),
  ]);
  // The time after the lock, not before it: a cancel that held the lock meanwhile closed the window
  // at its own "now", later than one read before waiting (orders then slipped in after the cancel).
  const now = clock();
  return {
    available: new Map(stockRows.map((r) => [r.sale_item_id, r.available])),
    initial: new Map(stockRows.map((r) => [r.sale_item_id, r.initial])),
    limits: new Map(stockRows.map((r) => [r.sale_item_id, r.per_user_limit])),
    quota: new Map(quotaRows.map((q) => [quotaKey(q.sale_item_id, q.user_id), q.quantity])),
    // Read after the lock: a sale cancelled or moved meanwhile is seen here, whatever the gate admitted.
    closed: new Set(stockRows.filter((r) => now < r.on_sale_from || now >= r.on_sale_until).map((r) => r.sale_item_id)),
  };
}

/** The database's refusal of a request, checked line by line: unknown item, the window, then stock, then the buyer's limit. */
function refusalOf({ available, limits, quota, closed }: Ledger, request: ReserveRequest): ReserveResult | undefined {
  for (const line of request.lines) {
    const left = available.get(line.saleItemId);
    if (left === undefined) return { ok: false, reason: 'unknown_item', saleItemId: line.saleItemId };
    if (closed.has(line.saleItemId)) return { ok: false, reason: 'sale_not_active', saleItemId: line.saleItemId };
    if (left < line.quantity) return { ok: false, reason: 'sold_out', saleItemId: line.saleItemId };
    const taken = quota.get(quotaKey(line.saleItemId, request.userId)) ?? 0;
    if (taken + line.quantity > limits.get(line.saleItemId)!) return { ok: false, reason: 'limit_exceeded', saleItemId: line.saleItemId };
  }
  return undefined;
}

/** Takes an accepted request's units out of the ledger, so the batch's later requests see them gone. */
function take({ available, quota }: Ledger, request: ReserveRequest): Hold[] {
  return request.lines.map((line) => {
    available.set(line.saleItemId, available.get(line.saleItemId)! - line.quantity);
    const key = quotaKey(line.saleItemId, request.userId);
    quota.set(key, (quota.get(key) ?? 0) + line.quantity);
    return { holdId: randomUUID(), saleItemId: line.saleItemId, quantity: line.quantity };
  });
}

/** A stock row after units were taken: what is left, and the stock it is left of. */
type StockTaken = StockLeft & { initial: number };

/**
 * The accepted holds in the database: stock taken, quotas added, hold rows, and their events — sent,
 * not awaited (`Tx.send`): nothing here needs an answer, since the stock left is the locked ledger's
 * (the rows are ours until commit), and a failure fails the commit.
 */
async function writeHolds({ clock, emit }: InventoryContext, tx: Tx, holds: readonly NewHold[], ledger: Ledger): Promise<void> {
  const perItem = sumBy(holds, (h) => h.saleItemId);
  const after: StockTaken[] = [...perItem.keys()].map((id) => ({ sale_item_id: id, available: ledger.available.get(id)!, initial: ledger.initial.get(id)! }));
  const quotas = quotaDeltas(holds);
  tx.send(sql.takeStock, [[...perItem.keys()], [...perItem.values()]]);
  tx.send(sql.addQuotas, [quotas.itemIds, quotas.userIds, quotas.quantities, quotas.itemIds.map((id) => ledger.limits.get(id)!)]);
  tx.send(sql.insertHolds, [
    holds.map((h) => h.holdId), holds.map((h) => h.saleItemId), holds.map((h) => h.userId), holds.map((h) => h.quantity),
    holds.map((h) => h.kind), holds.map((h) => h.orderId), holds.map((h) => h.expiresAt.toISOString()), clock.now(),
  ]);
  await emit(tx, reservedEvents(after, perItem, holds, clock.now().getTime()));
}

/** `stock.reserved` per item, `stock.sold_out` for each item now empty, and each cart hold's expiry message to inventory itself. */
function reservedEvents(after: readonly StockTaken[], perItem: ReadonlyMap<string, number>, holds: readonly NewHold[], nowMs: number): OutgoingEvent[] {
  const events: OutgoingEvent[] = after.map((row) => ({
    topic: InventoryTopics.reserved,
    payload: { saleItemId: row.sale_item_id, quantity: perItem.get(row.sale_item_id)!, available: row.available } satisfies StockReserved,
  }));
  for (const row of after) if (row.available === 0) events.push({ topic: InventoryTopics.soldOut, payload: { saleItemId: row.sale_item_id, stock: row.initial } satisfies StockSoldOut });
  for (const h of holds) {
    if (h.kind === 'cart') events.push({ topic: InventoryTopics.holdExpiry, payload: { holdId: h.holdId } satisfies HoldExpiry, delayMs: Math.max(0, h.expiresAt.getTime() - nowMs) });
  }
  return events;
}
