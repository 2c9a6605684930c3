import type { Clock } from '../platform/clock.ts';
import type { Database, Queryable, Tx } from '../platform/database/index.ts';
import type { Emit } from '../platform/broker/outbox.ts';
import type { Admission, GateLine, RefusalReason, StockGate } from '../platform/gate/gate.ts';
import { LocalSoldOutChannel, type SoldOutChannel } from '../platform/gate/sold-out-channel.ts';
import type { Subscriber } from '../platform/broker/broker.ts';
import { readPayload } from '../platform/broker/event-contract.ts';
import { HoldExpiry, InventoryTopics } from './contracts.ts';
import type { InventoryContext } from './context.ts';
import type { CartHold, OrderHold, ReleasedHold, ReserveRequest, ReserveResult, StockAdjustment, StockAudit, StockItemSpec, StockRow, StockSnapshot } from './model.ts';
import { createSoldOutFlags } from './sold-out-flags.ts';
import { admit, flaggedSoldOut, undoAdmission } from './admission.ts';
import { reserve } from './reservation.ts';
import { sellOrder, releaseExpiredCartHold, releaseHolds, releaseOrder, unsellHolds, unsellOrder } from './release.ts';
import { provisionStock, rebuildGate } from './provisioning.ts';
import { attachToOrder, cartHolds, expiredCartHolds, holdsOfOrders } from './holds.ts';
import { auditStock } from './audit.ts';
import { stockSnapshot } from './snapshot.ts';
import { adjustStock, cartHoldsOfItems, lockStock, withdrawStock } from './sale-stock.ts';

export type { GateLine, RefusalReason };
export type {
  CartHold, Hold, InventoryViolation, OrderHold, ReleasedHold, ReserveRequest, ReserveResult, StockAdjustment, StockAudit, StockItemSpec, StockItemUnits, StockRow, StockSnapshot, StockTotals,
} from './model.ts';

/**
 * A purchase's way through inventory. `admit` takes the units in the gate at once; every admitted
 * attempt must then end in exactly one of: its holds written by a committed `reserve`, or
 * `undoAdmission` (`reserve` refused it, or its batch failed or never ran). An admission dropped on
 * the floor leaves the gate holding units the database never held, until the gate's next rebuild.
 */
export interface InventoryPurchase {
  /**
   * The hot-path decision: the local sold-out flag first (losers never reach the gate), then one
   * atomic gate call. `{ ok: true }` must be followed by `reserve` or `undoAdmission`.
   */
  admit(userId: string, lines: readonly GateLine[]): Promise<Admission>;
  /**
   * Writes the holds of a group-commit batch of admitted attempts inside its transaction. The
   * database re-decides every request under row locks (the "double check"): a wrong gate can make
   * it refuse, never oversell. A refused request's admission must be undone (`undoAdmission`).
   */
  reserve(tx: Tx, requests: readonly ReserveRequest[]): Promise<ReserveResult[]>;
  /** Gives back an admission whose holds were not written (refused by the database, or the batch failed). */
  undoAdmission(userId: string, lines: readonly GateLine[]): Promise<void>;
  /** Whether this process has the item flagged sold out right now (no gate, no database: a map read). */
  flaggedSoldOut(saleItemId: string): boolean;
}

/**
 * Inventory: stock per sale item, holds, per-buyer quotas, the admission gate and the sold-out
 * short-circuit in front of it, and the stock audit.
 */
export interface Inventory extends InventoryPurchase {
  /** Creates the stock rows of new sale items, in the catalog's transaction; the gate learns them after commit. */
  provisionStock(tx: Tx, items: readonly StockItemSpec[]): Promise<void>;
  /** Locks the items' stock rows in the caller's transaction (the order a purchase batch locks them in) and reads them. */
  lockStock(tx: Tx, saleItemIds: readonly string[]): Promise<StockRow[]>;
  /**
   * New terms for items in the catalog's transaction: units added or taken (never more than are
   * available), limit and window replaced; the gate follows after commit, in place.
   */
  adjustStock(tx: Tx, changes: readonly StockAdjustment[]): Promise<void>;
  /** Takes items nothing was taken from out of a sale; the gate forgets them after commit. */
  withdrawStock(tx: Tx, saleItemIds: readonly string[]): Promise<void>;
  /** The still-held cart holds of these items that no order took (a cancelled sale releases them). */
  cartHoldsOfItems(tx: Tx, saleItemIds: readonly string[]): Promise<string[]>;
  /** Loads every item and quota from the database into the gate (start-up, or after the gate lost its state). */
  rebuildGate(): Promise<void>;
  /** Whether the gate is loaded; asking a shared gate that lost its data starts its rebuild. */
  gateReady(): Promise<boolean>;
  /** Units left for sale, from the gate (no database read). */
  available(saleItemId: string): Promise<number | undefined>;
  /** The buyer's cart holds, oldest first; with `lock`, row-locked for a checkout in the caller's transaction. */
  cartHolds(q: Queryable, userId: string, lock?: boolean): Promise<CartHold[]>;
  /** Moves cart holds under an order; their expiry does not change. Answers how many moved. */
  attachToOrder(tx: Tx, holdIds: readonly string[], orderId: string): Promise<number>;
  /** Releases every still-held unit of an order (cancel, expiry). Idempotent: released holds stay released. */
  releaseOrder(tx: Tx, orderId: string, reason: string): Promise<ReleasedHold[]>;
  /** Releases the named holds that are still held (cart removal, expired cart holds). Idempotent. */
  releaseHolds(tx: Tx, holdIds: readonly string[], reason: string): Promise<ReleasedHold[]>;
  /** Cart holds whose time ran out, oldest expiry first (the sweeper releases them). */
  expiredCartHolds(limit: number): Promise<string[]>;
  /** The order was paid: its held units become sold. Idempotent. */
  sellOrder(tx: Tx, orderId: string): Promise<ReleasedHold[]>;
  /** An admin cancelled a paid order: its sold units go back on sale (`restock`) or are written off. */
  unsellOrder(tx: Tx, orderId: string, restock: boolean): Promise<ReleasedHold[]>;
  /** A merchant cancelled lines of a paid order: those sold holds go back on sale (`restock`) or are written off. Idempotent. */
  unsellHolds(tx: Tx, holdIds: readonly string[], restock: boolean): Promise<ReleasedHold[]>;
  /** Hold status per order, for the cross-component audit. */
  holdsOfOrders(): Promise<OrderHold[]>;
  /** Checks inventory's invariants; with `compareGate`, also that the gate agrees with the database (only meaningful when quiet). */
  audit(compareGate: boolean, holdGraceMs: number): Promise<StockAudit>;
  /** Inventory's consumer: a cart hold not checked out by its expiry goes back on sale (the sweeper is the backstop). */
  subscribe(broker: Subscriber): void;
  /** Units per sale item by state, for items on sale within `windowMs` of now, and totals over every item (metrics; reads stock_items only). */
  stockSnapshot(windowMs: number): Promise<StockSnapshot>;
}


export interface InventoryDeps {
  db: Database;
  clock: Clock;
  gate: StockGate;
  /** How long a local sold-out flag short-circuits before the gate is asked again. */
  soldOutFlagTtlMs?: number;
  /** Writes events to the outbox in a transaction (the composition root's one emitter). */
  emit: Emit;
  /** Shares sold-out flags between API processes (Redis pub/sub); local by default. */
  soldOutChannel?: SoldOutChannel;
}

/** Wires the inventory use cases (one file each) over one shared context. */
export function createInventory({ db, clock, gate, soldOutFlagTtlMs = 1000, emit, soldOutChannel = new LocalSoldOutChannel() }: InventoryDeps): Inventory {
  const ctx: InventoryContext = { db, clock, gate, emit, soldOut: createSoldOutFlags(soldOutChannel, soldOutFlagTtlMs) };
  return {
    admit: (userId, lines) => admit(ctx, userId, lines),
    reserve: (tx, requests) => reserve(ctx, tx, requests),
    undoAdmission: (userId, lines) => undoAdmission(ctx, userId, lines),
    flaggedSoldOut: (saleItemId) => flaggedSoldOut(ctx, saleItemId),
    provisionStock: (tx, items) => provisionStock(ctx, tx, items),
    rebuildGate: () => rebuildGate(ctx),
    lockStock,
    adjustStock: (tx, changes) => adjustStock(ctx, tx, changes),
    withdrawStock: (tx, ids) => withdrawStock(ctx, tx, ids),
    cartHoldsOfItems,
    gateReady: () => gate.ready(),
    available: (saleItemId) => gate.available(saleItemId),
    cartHolds,
    attachToOrder,
    releaseOrder: (tx, orderId, reason) => releaseOrder(ctx, tx, orderId, reason),
    releaseHolds: (tx, holdIds, reason) => releaseHolds(ctx, tx, holdIds, reason),
    expiredCartHolds: (limit) => expiredCartHolds(ctx, limit),
    sellOrder: (tx, orderId) => sellOrder(ctx, tx, orderId),
    unsellOrder: (tx, orderId, restock) => unsellOrder(ctx, tx, orderId, restock),
    unsellHolds: (tx, holdIds, restock) => unsellHolds(ctx, tx, holdIds, restock),
    holdsOfOrders: () => holdsOfOrders(ctx),
    audit: (compareGate, holdGraceMs) => auditStock(ctx, compareGate, holdGraceMs),
    stockSnapshot: (windowMs) => stockSnapshot(ctx, windowMs),
    subscribe(broker) {
      broker.consume('inventory-hold-expiry', [InventoryTopics.holdExpiry], async (tx, message) => {
        await releaseExpiredCartHold(ctx, tx, readPayload(HoldExpiry, message).holdId);
      });
    },
  };
}
