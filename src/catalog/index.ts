import type { Clock } from '../platform/clock.ts';
import type { Database } from '../platform/database/index.ts';
import type { Emit } from '../platform/broker/outbox.ts';
import type { Inventory } from '../inventory/index.ts';
import type { CatalogContext } from './context.ts';
import { saleStatus, type FlashSale, type NewFlashSale, type NewProduct, type Product, type SaleChanges, type SaleItem, type SaleStatus } from './model.ts';
import { updateFlashSale } from './update-sale.ts';
import { cancelFlashSale } from './cancel-sale.ts';
import { addSaleStock } from './add-stock.ts';
import { createProduct, listProducts } from './products.ts';
import { createFlashSale } from './sales.ts';
import { createWarmCatalog } from './warm-catalog.ts';

export { saleEndsSettledAt } from './model.ts';
export type { FlashSale, HoldMode, NewFlashSale, NewProduct, Product, SaleChanges, SaleItem, SaleStatus } from './model.ts';

/**
 * Catalog: products and scheduled flash sales. Sales are read on the hot path, so they are kept
 * warm in memory: loaded at start, added after each commit; reads never query the database.
 */
export interface Catalog {
  /** A product of the merchant's shop. */
  createProduct(shopId: string, input: NewProduct): Promise<Product>;
  /** Products, newest first, of one shop or all. */
  listProducts(filter: { shopId?: string; limit: number; offset: number }): Promise<Product[]>;
  /** Schedules a sale of the shop's own products; its stock rows are created in the same transaction. */
  createFlashSale(shopId: string, input: NewFlashSale): Promise<FlashSale>;
  /** Edits the shop's scheduled sale (name, times, window, items, stock, limits); `sale_started` once it has started. */
  updateFlashSale(shopId: string, saleId: string, changes: SaleChanges): Promise<FlashSale>;
  /** Cancels the shop's sale before or during it; order then closes its pending orders. Idempotent. */
  cancelFlashSale(shopId: string, saleId: string): Promise<FlashSale>;
  /** Adds units to an item of the shop's scheduled or running sale. */
  addSaleStock(shopId: string, saleId: string, saleItemId: string, quantity: number): Promise<FlashSale>;
  /** Sales from memory, newest start first. */
  listFlashSales(filter?: { shopId?: string; status?: SaleStatus }): FlashSale[];
  /** A sale from memory only. */
  getFlashSale(saleId: string): FlashSale | undefined;
  /** A sale from memory, or one database look on a miss (see findSaleItem). */
  findFlashSale(saleId: string): Promise<FlashSale | undefined>;
  /** A sale item from memory only. */
  getSaleItem(saleItemId: string): SaleItem | undefined;
  /** A sale item from memory; on a miss, one database look, remembered for a second when the id does not exist. */
  findSaleItem(saleItemId: string): Promise<SaleItem | undefined>;
  /** Scheduled, active or ended by the clock now, or cancelled. */
  statusOf(sale: FlashSale): SaleStatus;
  /** Loads every sale into memory. Call once at start. */
  warm(): Promise<number>;
  /** Loads the sales other processes created since the last look (several API processes share one database). */
  refresh(): Promise<number>;
  /** Keeps the warm data in step with sales other processes create. */
  startRefreshing(intervalMs: number): void;
  /** Stops the periodic refresh (shutdown). */
  stopRefreshing(): void;
  /** How many not-found ids are remembered right now (at most CATALOG_NOT_FOUND_CACHE_MAX). */
  notFoundCached(): number;
}

export interface CatalogDeps {
  db: Database;
  clock: Clock;
  inventory: CatalogContext['inventory'];
  /** Writes events to the outbox in a transaction (the composition root's one emitter). */
  emit: Emit;
  /** At most this many not-found ids are remembered (CATALOG_NOT_FOUND_CACHE_MAX). */
  notFoundCacheMax?: number;
}

/** Wires the catalog's use cases (products, sales, the warm catalog) over one shared context. */
export function createCatalog({ notFoundCacheMax = 10_000, ...deps }: CatalogDeps): Catalog {
  const ctx: CatalogContext = deps;
  const warm = createWarmCatalog(ctx, notFoundCacheMax);
  return {
    createProduct: (shopId, input) => createProduct(ctx, shopId, input),
    listProducts: (filter) => listProducts(ctx, filter),
    createFlashSale: (shopId, input) => createFlashSale(ctx, warm.remember, shopId, input),
    updateFlashSale: (shopId, saleId, changes) => updateFlashSale(ctx, warm.remember, shopId, saleId, changes),
    cancelFlashSale: (shopId, saleId) => cancelFlashSale(ctx, warm.remember, shopId, saleId),
    addSaleStock: (shopId, saleId, saleItemId, quantity) => addSaleStock(ctx, warm.remember, shopId, saleId, saleItemId, quantity),
    listFlashSales: warm.listFlashSales,
    getFlashSale: warm.getFlashSale,
    findFlashSale: warm.findFlashSale,
    getSaleItem: warm.getSaleItem,
    findSaleItem: warm.findSaleItem,
    statusOf: (sale) => saleStatus(sale, deps.clock.now()),
    warm: warm.warm,
    refresh: warm.refresh,
    startRefreshing: warm.startRefreshing,
    stopRefreshing: warm.stopRefreshing,
    notFoundCached: warm.notFoundCached,
  };
}
