import type { Clock } from '../platform/clock.ts';
import type { Database } from '../platform/database/index.ts';
import type { Emit } from '../platform/broker/outbox.ts';
import type { Inventory } from '../inventory/index.ts';

/** The dependencies the catalog's use cases share, built once by `createCatalog`. */
export interface CatalogContext {
  db: Database;
  clock: Clock;
  /** A sale's stock rows are inventory's, created in the sale's own transaction. */
  inventory: Pick<Inventory, 'provisionStock' | 'lockStock' | 'adjustStock' | 'withdrawStock' | 'cartHoldsOfItems' | 'releaseHolds'>;
  emit: Emit;
}
