import type { Tx } from '../platform/database/index.ts';
import type { GateItem } from '../platform/gate/gate.ts';
import type { InventoryContext } from './context.ts';
import type { StockItemSpec } from './model.ts';
import * as sql from './sql.ts';

/** Creates the stock rows of new sale items, in the catalog's transaction; the gate learns them after commit. */
export async function provisionStock({ gate }: InventoryContext, tx: Tx, items: readonly StockItemSpec[]): Promise<void> {
  if (items.length === 0) return;
  const first = items[0]!;
  await tx.query(sql.insertStockItems, [
    items.map((i) => i.saleItemId), items.map((i) => i.saleId), items.map((i) => i.stock), items.map((i) => i.perUserLimit),
    first.startsAt, first.endsAt,
  ]);
  tx.afterCommit(() => gate.load(items.map(newGateItem), []));
}

/** Loads every item and quota from the database into the gate (start-up, or after the gate lost its state). */
export async function rebuildGate({ db, gate, soldOut }: InventoryContext): Promise<void> {
  const items = await db.query<{ sale_item_id: string; available: number; per_user_limit: number; on_sale_from: Date; on_sale_until: Date }>(sql.allStockItems);
  const quotas = await db.query<{ sale_item_id: string; user_id: string; quantity: number }>(sql.allQuotas);
  await gate.load(
    items.map((r) => ({ saleItemId: r.sale_item_id, available: r.available, perUserLimit: r.per_user_limit, startsAt: r.on_sale_from.getTime(), endsAt: r.on_sale_until.getTime() })),
    quotas.map((q) => ({ saleItemId: q.sale_item_id, userId: q.user_id, quantity: q.quantity })),
  );
  soldOut.forgetAll();
}

/** A new item as the gate holds it: all its stock available. */
function newGateItem(i: StockItemSpec): GateItem {
  return { saleItemId: i.saleItemId, available: i.stock, perUserLimit: i.perUserLimit, startsAt: i.startsAt.getTime(), endsAt: i.endsAt.getTime() };
}
