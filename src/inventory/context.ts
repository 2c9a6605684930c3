import type { Clock } from '../platform/clock.ts';
import type { Database } from '../platform/database/index.ts';
import type { Emit } from '../platform/broker/outbox.ts';
import type { StockGate } from '../platform/gate/gate.ts';
import type { SoldOutFlags } from './sold-out-flags.ts';

/** The dependencies every inventory use case shares, built once by `createInventory`. */
export interface InventoryContext {
  db: Database;
  clock: Clock;
  gate: StockGate;
  /** Writes events to the outbox in a transaction (the composition root's one emitter). */
  emit: Emit;
  /** This process's sold-out flags, shared with the other API processes. */
  soldOut: SoldOutFlags;
}
