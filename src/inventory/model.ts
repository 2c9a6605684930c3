import type { GateLine, RefusalReason } from '../platform/gate/gate.ts';

export interface StockItemSpec {
  saleItemId: string;
  saleId: string;
  stock: number;
  perUserLimit: number;
  startsAt: Date;
  endsAt: Date;
}

/** An item's stock row as sale management sees it (locked in the caller's transaction). */
export interface StockRow {
  saleItemId: string;
  initial: number;
  available: number;
  held: number;
  sold: number;
  writtenOff: number;
  perUserLimit: number;
  onSaleFrom: Date;
  onSaleUntil: Date;
}

/** New terms for one item: `delta` units added (or taken, if negative), the limit and window replaced. */
export interface StockAdjustment {
  saleItemId: string;
  delta: number;
  perUserLimit: number;
  startsAt: Date;
  endsAt: Date;
}

/** One purchase attempt inside a group-commit batch: all its lines are held, or none. */
export interface ReserveRequest {
  userId: string;
  lines: readonly GateLine[];
  kind: 'order' | 'cart';
  orderId: string | null;
  expiresAt: Date;
}

export interface Hold {
  holdId: string;
  saleItemId: string;
  quantity: number;
}

export type ReserveResult = { ok: true; holds: Hold[] } | { ok: false; reason: RefusalReason; saleItemId: string };

export interface ReleasedHold {
  holdId: string;
  orderId: string | null;
  saleItemId: string;
  userId: string;
  quantity: number;
}

export interface CartHold extends Hold {
  createdAt: Date;
  expiresAt: Date;
}

/** A hold that belongs to an order, with its status: what the cross-component audit compares orders against. */
export interface OrderHold {
  holdId: string;
  orderId: string;
  saleItemId: string;
  quantity: number;
  status: string;
}

/** Units over every sale item, by state, from the stock rows. */
export interface StockTotals {
  initial: number;
  available: number;
  held: number;
  sold: number;
  writtenOff: number;
}

export interface InventoryViolation {
  check: string;
  message: string;
  ids: string[];
}

/** The inventory audit's answer: how many items it looked at, what is wrong, and the unit totals. */
export interface StockAudit {
  items: number;
  violations: InventoryViolation[];
  oversoldUnits: number;
  totals: StockTotals;
}

/** A hold as the release, sell and unsell statements return it. */
export interface HoldRow { id: string; sale_item_id: string; user_id: string; quantity: number; order_id: string | null }

/** A stock row after an update: what is left for sale. */
export interface StockLeft { sale_item_id: string; available: number }

export function toReleased(r: HoldRow): ReleasedHold {
  return { holdId: r.id, orderId: r.order_id, saleItemId: r.sale_item_id, userId: r.user_id, quantity: r.quantity };
}

export function sumBy<T extends { quantity: number }>(rows: readonly T[], key: (row: T) => string): Map<string, number> {
  const sums = new Map<string, number>();
  for (const row of rows) sums.set(key(row), (sums.get(key(row)) ?? 0) + row.quantity);
  return sums;
}

/** The key of one buyer's quota on one item. */
export const quotaKey = (saleItemId: string, userId: string): string => `${saleItemId}|${userId}`;

/** Units per buyer and item, as the parallel arrays the quota statements unnest. */
export function quotaDeltas(units: readonly { saleItemId: string; userId: string; quantity: number }[]): { itemIds: string[]; userIds: string[]; quantities: number[] } {
  const perPair = sumBy(units, (h) => quotaKey(h.saleItemId, h.userId));
  const pairs = [...perPair.keys()].map((k) => k.split('|') as [string, string]);
  return { itemIds: pairs.map((p) => p[0]), userIds: pairs.map((p) => p[1]), quantities: [...perPair.values()] };
}

/** One sale item's units by state (the metrics' burn-down). */
export interface StockItemUnits { saleId: string; saleItemId: string; initial: number; available: number; held: number; sold: number; writtenOff: number }
/** Items on sale around now, and totals over every item (Inventory.stockSnapshot). */
export interface StockSnapshot { items: StockItemUnits[]; totals: Omit<StockItemUnits, 'saleId' | 'saleItemId'> }
