import type { Clock } from '../platform/clock.ts';
import type { Database, Queryable, Tx } from '../platform/database/index.ts';
import type { Emit } from '../platform/broker/outbox.ts';
import type { GateLine, RefusalReason, StockGate } from '../platform/gate/gate.ts';
import { LocalSoldOutChannel, type SoldOutChannel } from '../platform/gate/sold-out-channel.ts';
import type { Subscriber } from '../platform/broker/broker.ts';
import { HoldExpiry, InventoryTopics } from './contracts.ts';
import { readPayload } from '../platform/broker/event-contract.ts';
import type { CartHold, InventoryViolation, OrderHold, ReserveRequest, StockAudit, StockItemSpec, StockTotals } from './model.ts';
import { createSoldOutFlags } from './sold-out-flags.ts';
import type { InventoryContext } from './context.ts';
import { admit, flaggedSoldOut, undoAdmission } from './admission.ts';
import { reserve } from './reservation.ts';
import { commitOrder, releaseExpiredCartHold, releaseHolds, releaseOrder, unsellOrder } from './release.ts';
import * as sql from './sql.ts';

export type { GateLine, RefusalReason };
export type {
  CartHold, Hold, InventoryViolation, OrderHold, ReleasedHold, ReserveRequest, ReserveResult, StockAudit, StockItemSpec, StockTotals,
} from './model.ts';

export interface InventoryDeps {
  db: Database;
  clock: Clock;
  gate: StockGate;
  /** How long a local sold-out flag short-circuits before the gate is asked again. */
  soldOutFlagTtlMs?: number;
  /** Told after commit when events were written, so delivery starts at once. */
  /** Writes events to the outbox in a transaction (the composition root's one emitter). */
  emit: Emit;
  /** Shares sold-out flags between API processes (Redis pub/sub); local by default. */
  soldOutChannel?: SoldOutChannel;
}

/**
 * Inventory: stock per sale item, holds, per-buyer quotas, the admission gate and the sold-out
 * short-circuit in front of it, and the stock audit.
 */
export function createInventory({ db, clock, gate, soldOutFlagTtlMs = 1000, emit, soldOutChannel = new LocalSoldOutChannel() }: InventoryDeps) {
  const soldOut = createSoldOutFlags(soldOutChannel, soldOutFlagTtlMs);
  const ctx: InventoryContext = { db, clock, gate, emit, soldOut };

  return {
    /** Creates the stock rows of new sale items, in the catalog's transaction; the gate learns them after commit. */
    async provisionStock(tx: Tx, items: readonly StockItemSpec[]): Promise<void> {
      if (items.length === 0) return;
      const first = items[0]!;
      await tx.query(sql.insertStockItems, [
        items.map((i) => i.saleItemId), items.map((i) => i.saleId), items.map((i) => i.stock), items.map((i) => i.perUserLimit),
        first.startsAt, first.endsAt,
      ]);
      tx.afterCommit(() =>
        gate.load(items.map((i) => ({ saleItemId: i.saleItemId, available: i.stock, perUserLimit: i.perUserLimit, startsAt: i.startsAt.getTime(), endsAt: i.endsAt.getTime() })), []),
      );
    },

    /** Loads every item and quota from the database into the gate (start-up, or after the gate lost its state). */
    async rebuildGate(): Promise<void> {
      const items = await db.query<{ sale_item_id: string; available: number; per_user_limit: number; on_sale_from: Date; on_sale_until: Date }>(sql.allStockItems);
      const quotas = await db.query<{ sale_item_id: string; user_id: string; quantity: number }>(sql.allQuotas);
      await gate.load(
        items.map((r) => ({ saleItemId: r.sale_item_id, available: r.available, perUserLimit: r.per_user_limit, startsAt: r.on_sale_from.getTime(), endsAt: r.on_sale_until.getTime() })),
        quotas.map((q) => ({ saleItemId: q.sale_item_id, userId: q.user_id, quantity: q.quantity })),
      );
      soldOut.forgetAll();
    },

    admit: (userId: string, lines: readonly GateLine[]) => admit(ctx, userId, lines),
    flaggedSoldOut: (saleItemId: string) => flaggedSoldOut(ctx, saleItemId),
    undoAdmission: (userId: string, lines: readonly GateLine[]) => undoAdmission(ctx, userId, lines),

    reserve: (tx: Tx, requests: readonly ReserveRequest[]) => reserve(ctx, tx, requests),

    releaseOrder: (tx: Tx, orderId: string, reason: string) => releaseOrder(ctx, tx, orderId, reason),
    releaseHolds: (tx: Tx, holdIds: readonly string[], reason: string) => releaseHolds(ctx, tx, holdIds, reason),
    commitOrder: (tx: Tx, orderId: string) => commitOrder(ctx, tx, orderId),
    unsellOrder: (tx: Tx, orderId: string, restock: boolean) => unsellOrder(ctx, tx, orderId, restock),

    /** Inventory's consumer: a cart hold not checked out by its expiry goes back on sale (the sweeper is the backstop). */
    subscribe(broker: Subscriber): void {
      broker.consume('inventory-hold-expiry', [InventoryTopics.holdExpiry], async (tx, message) => {
        await releaseExpiredCartHold(ctx, tx, readPayload(HoldExpiry, message).holdId);
      });
    },

    /** Cart holds whose time ran out (the sweeper releases them). */
    async expiredCartHolds(limit: number): Promise<string[]> {
      return (await db.query<{ id: string }>(sql.expiredCartHolds, [clock.now(), limit])).map((r) => r.id);
    },

    /** The buyer's cart holds; with `lock`, row-locked for a checkout in the caller's transaction. */
    async cartHolds(q: Queryable, userId: string, lock = false): Promise<CartHold[]> {
      const rows = await q.query<{ id: string; sale_item_id: string; quantity: number; created_at: Date; expires_at: Date }>(
        lock ? sql.lockCartHoldsOfUser : sql.cartHoldsOfUser, [userId]);
      return rows.map((r) => ({ holdId: r.id, saleItemId: r.sale_item_id, quantity: r.quantity, createdAt: r.created_at, expiresAt: r.expires_at }));
    },

    /** Moves cart holds under an order; their expiry does not change. */
    async attachToOrder(tx: Tx, holdIds: readonly string[], orderId: string): Promise<number> {
      return (await tx.query(sql.attachHoldsToOrder, [holdIds, orderId])).length;
    },

    /** Units left for sale, from the gate (no database read). */
    available: (saleItemId: string) => gate.available(saleItemId),

    gateReady: () => gate.ready(),

    /** Hold status per order, for the cross-component audit. */
    async holdsOfOrders(): Promise<OrderHold[]> {
      const rows = await db.query<{ id: string; order_id: string; sale_item_id: string; quantity: number; status: string }>(sql.holdsOfOrders);
      return rows.map((r) => ({ holdId: r.id, orderId: r.order_id, saleItemId: r.sale_item_id, quantity: r.quantity, status: r.status }));
    },

    /** Checks inventory's invariants; with `compareGate`, also that the gate agrees with the database (only meaningful when quiet). */
    async audit(compareGate: boolean, holdGraceMs: number): Promise<StockAudit> {
      const violations: InventoryViolation[] = [];
      let oversoldUnits = 0;
      const totals: StockTotals = { initial: 0, available: 0, held: 0, sold: 0, writtenOff: 0 };
      const rows = await db.query<{ sale_item_id: string; initial: number; available: number; held: number; sold: number; written_off: number; holds_held: number; holds_sold: number; holds_written_off: number }>(sql.auditStock);
      for (const r of rows) {
        const id = [r.sale_item_id];
        totals.initial += r.initial;
        totals.available += r.available;
        totals.held += r.held;
        totals.sold += r.sold;
        totals.writtenOff += r.written_off;
        if (r.available < 0 || r.held < 0 || r.sold < 0) violations.push({ check: 'stock_non_negative', message: `negative stock term: available=${r.available} held=${r.held} sold=${r.sold}`, ids: id });
        if (r.initial !== r.available + r.held + r.sold + r.written_off) violations.push({ check: 'stock_balanced', message: `initial ${r.initial} != available ${r.available} + held ${r.held} + sold ${r.sold} + written off ${r.written_off}`, ids: id });
        if (r.written_off !== r.holds_written_off) violations.push({ check: 'written_off_matches_holds', message: `stock row says written_off=${r.written_off}, holds say ${r.holds_written_off}`, ids: id });
        if (r.held !== r.holds_held) violations.push({ check: 'held_matches_holds', message: `stock row says held=${r.held}, holds say ${r.holds_held}`, ids: id });
        if (r.sold !== r.holds_sold) violations.push({ check: 'sold_matches_holds', message: `stock row says sold=${r.sold}, holds say ${r.holds_sold}`, ids: id });
        const oversold = r.holds_held + r.holds_sold + r.holds_written_off - r.initial;
        if (oversold > 0) {
          oversoldUnits += oversold;
          violations.push({ check: 'not_oversold', message: `oversold by ${oversold}`, ids: id });
        }
        if (compareGate) {
          const gateAvailable = await gate.available(r.sale_item_id);
          if (gateAvailable !== r.available) violations.push({ check: 'gate_matches_db', message: `gate says available=${gateAvailable}, database ${r.available}`, ids: id });
        }
      }
      for (const q of await db.query<{ sale_item_id: string; user_id: string; quota: number; taken: number; per_user_limit: number | null }>(sql.auditQuotas)) {
        violations.push({ check: 'per_user_limit', message: `buyer quota ${q.quota}, holds ${q.taken}, limit ${q.per_user_limit}`, ids: [q.sale_item_id, q.user_id] });
      }
      if (compareGate) {
        for (const q of await db.query<{ sale_item_id: string; user_id: string; quantity: number }>(sql.allQuotas)) {
          const inGate = await gate.quota(q.sale_item_id, q.user_id);
          if (inGate !== q.quantity) violations.push({ check: 'gate_quota_matches_db', message: `gate quota ${inGate}, database ${q.quantity}`, ids: [q.sale_item_id, q.user_id] });
        }
      }
      const orphans = await db.query<{ id: string }>(sql.orphanOrderHolds);
      if (orphans.length > 0) violations.push({ check: 'hold_has_order', message: `${orphans.length} order holds without an order`, ids: orphans.map((o) => o.id) });
      const stale = await db.query<{ id: string }>(sql.staleHolds, [new Date(clock.now().getTime() - holdGraceMs)]);
      if (stale.length > 0) violations.push({ check: 'no_stale_holds', message: `${stale.length} holds still held past expiry + grace`, ids: stale.map((h) => h.id) });
      return { items: rows.length, violations, oversoldUnits, totals };
    },
  };
}

export type Inventory = ReturnType<typeof createInventory>;
