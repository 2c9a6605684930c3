import type { Clock } from '../platform/clock.ts';
import type { Database, Tx } from '../platform/database/index.ts';
import type { Emit } from '../platform/broker/outbox.ts';
import type { GateLine, RefusalReason, StockGate } from '../platform/gate/gate.ts';
import { LocalSoldOutChannel, type SoldOutChannel } from '../platform/gate/sold-out-channel.ts';
import type { Subscriber } from '../platform/broker/broker.ts';
import { HoldExpiry, InventoryTopics } from './contracts.ts';
import { readPayload } from '../platform/broker/event-contract.ts';
import type { InventoryViolation, ReserveRequest, StockAudit, StockItemSpec, StockTotals } from './model.ts';
import { createSoldOutFlags } from './sold-out-flags.ts';
import type { InventoryContext } from './context.ts';
import { admit, flaggedSoldOut, undoAdmission } from './admission.ts';
import { reserve } from './reservation.ts';
import { provisionStock, rebuildGate } from './provisioning.ts';
import { attachToOrder, cartHolds, expiredCartHolds, holdsOfOrders } from './holds.ts';
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
    provisionStock: (tx: Tx, items: readonly StockItemSpec[]) => provisionStock(ctx, tx, items),
    rebuildGate: () => rebuildGate(ctx),

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

    expiredCartHolds: (limit: number) => expiredCartHolds(ctx, limit),
    cartHolds,
    attachToOrder,

    /** Units left for sale, from the gate (no database read). */
    available: (saleItemId: string) => gate.available(saleItemId),

    gateReady: () => gate.ready(),

    holdsOfOrders: () => holdsOfOrders(ctx),

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
