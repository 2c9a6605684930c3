import type { Clock } from '../platform/clock.ts';
import type { Database, Tx } from '../platform/database/index.ts';
import type { Emit } from '../platform/broker/outbox.ts';
import type { GateLine, RefusalReason, StockGate } from '../platform/gate/gate.ts';
import { LocalSoldOutChannel, type SoldOutChannel } from '../platform/gate/sold-out-channel.ts';
import type { Subscriber } from '../platform/broker/broker.ts';
import { HoldExpiry, InventoryTopics } from './contracts.ts';
import { readPayload } from '../platform/broker/event-contract.ts';
import type { ReserveRequest, StockItemSpec } from './model.ts';
import { createSoldOutFlags } from './sold-out-flags.ts';
import type { InventoryContext } from './context.ts';
import { admit, flaggedSoldOut, undoAdmission } from './admission.ts';
import { reserve } from './reservation.ts';
import { provisionStock, rebuildGate } from './provisioning.ts';
import { attachToOrder, cartHolds, expiredCartHolds, holdsOfOrders } from './holds.ts';
import { auditStock } from './audit.ts';
import { commitOrder, releaseExpiredCartHold, releaseHolds, releaseOrder, unsellOrder } from './release.ts';

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

    audit: (compareGate: boolean, holdGraceMs: number) => auditStock(ctx, compareGate, holdGraceMs),
  };
}

export type Inventory = ReturnType<typeof createInventory>;
