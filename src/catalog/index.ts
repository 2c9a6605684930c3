import { randomUUID } from 'node:crypto';
import type { Clock } from '../platform/clock.ts';
import type { Database } from '../platform/database/index.ts';
import type { Emit } from '../platform/broker/outbox.ts';
import { AppError } from '../platform/errors.ts';
import { LruMap } from '../platform/lru.ts';
import type { Inventory } from '../inventory/index.ts';
import { CatalogTopics, type SaleScheduled } from './contracts.ts';
import * as sql from './sql.ts';

export type HoldMode = 'order' | 'cart';

export interface Product {
  id: string;
  shopId: string;
  name: string;
  description: string;
  price: number;
  currency: string;
  createdAt: Date;
}

export interface SaleItem {
  id: string;
  saleId: string;
  productId: string;
  productName: string;
  flashPrice: number;
  stock: number;
  perUserLimit: number;
}

export interface FlashSale {
  id: string;
  shopId: string;
  name: string;
  startsAt: Date;
  endsAt: Date;
  paymentWindowS: number;
  holdMode: HoldMode;
  currency: string;
  createdAt: Date;
  items: SaleItem[];
}

export interface NewProduct {
  name: string;
  description?: string;
  price: number;
  currency: string;
}

export interface NewFlashSale {
  name: string;
  startsAt: Date;
  endsAt: Date;
  paymentWindowS: number;
  holdMode: HoldMode;
  items: Array<{ productId: string; flashPrice: number; stock: number; perUserLimit: number }>;
}

export interface CatalogDeps {
  db: Database;
  clock: Clock;
  inventory: Inventory;
  /** Writes events to the outbox in a transaction (the composition root's one emitter). */
  emit: Emit;
  /** At most this many not-found ids are remembered (CATALOG_NOT_FOUND_CACHE_MAX). */
  notFoundCacheMax?: number;
}

/**
 * Catalog: products and scheduled flash sales. Sales are read on the hot path, so they are kept
 * warm in memory: loaded at start, added after each commit; reads never query the database.
 */
export function createCatalog({ db, clock, inventory, emit, notFoundCacheMax = 10_000 }: CatalogDeps) {
  const sales = new Map<string, FlashSale>();
  const items = new Map<string, SaleItem>();
  /** Newest creation time seen: a refresh reads only what other processes created since. */
  let seenUpTo = new Date(0);
  /**
   * Ids recently looked up and not found (until when, on the monotonic clock), so garbage ids cannot
   * make every request query the DB. Bounded: the ids are the client's to choose.
   */
  const missing = new LruMap<string, number>(notFoundCacheMax);
  let refreshTimer: NodeJS.Timeout | undefined;

  function remember(sale: FlashSale): void {
    sales.set(sale.id, sale);
    for (const item of sale.items) items.set(item.id, item);
    if (sale.createdAt > seenUpTo) seenUpTo = sale.createdAt;
  }

  /** Whether `id` was found missing less than a second ago; a stale entry is dropped. */
  function recentlyMissing(id: string): boolean {
    const until = missing.get(id);
    if (until === undefined) return false;
    if (until > performance.now()) return true;
    missing.delete(id);
    return false;
  }

  async function loadSales(saleRows: SaleRow[]): Promise<number> {
    if (saleRows.length === 0) return 0;
    const itemRows = await db.query<ItemRow>(sql.itemsOfSales, [saleRows.map((r) => r.id)]);
    for (const row of saleRows) remember(toSale(row, itemRows.filter((i) => i.sale_id === row.id).map(toItem)));
    return saleRows.length;
  }

  /** Sales created by any process since the last look (several API processes share one database). */
  async function refresh(): Promise<number> {
    const rows = await db.query<SaleRow>(sql.salesCreatedSince, [seenUpTo]);
    return loadSales(rows.filter((r) => !sales.has(r.id)));
  }

  return {
    /** Loads every sale into memory. Call once at start. */
    async warm(): Promise<number> {
      const saleRows = await db.query<SaleRow>(sql.allSales);
      const itemRows = await db.query<ItemRow>(sql.allSaleItems);
      const bySale = new Map<string, SaleItem[]>();
      for (const row of itemRows) {
        const list = bySale.get(row.sale_id) ?? [];
        list.push(toItem(row));
        bySale.set(row.sale_id, list);
      }
      for (const row of saleRows) remember(toSale(row, bySale.get(row.id) ?? []));
      return saleRows.length;
    },

    refresh,

    /** Keeps the warm data in step with sales other processes create. */
    startRefreshing(intervalMs: number): void {
      clearInterval(refreshTimer);
      refreshTimer = setInterval(() => void refresh().catch(() => {}), intervalMs);
      refreshTimer.unref();
    },

    stopRefreshing(): void {
      clearInterval(refreshTimer);
    },

    /**
     * A sale item from memory; on a miss, one database look (another process may have just created
     * it), remembered for a second when the id does not exist.
     */
    async findSaleItem(saleItemId: string): Promise<SaleItem | undefined> {
      const known = items.get(saleItemId);
      if (known) return known;
      if (recentlyMissing(saleItemId)) return undefined;
      const [row] = await db.query<{ sale_id: string }>(sql.saleOfItem, [saleItemId]);
      if (row) await loadSales(await db.query<SaleRow>(`${sql.allSales} where id = $1`, [row.sale_id]));
      const found = items.get(saleItemId);
      if (!found) missing.set(saleItemId, performance.now() + 1000);
      return found;
    },

    async createProduct(shopId: string, input: NewProduct): Promise<Product> {
      const product: Product = { id: randomUUID(), shopId, name: input.name, description: input.description ?? '', price: input.price, currency: input.currency, createdAt: clock.now() };
      await db.query(sql.insertProduct, [product.id, shopId, product.name, product.description, product.price, product.currency, product.createdAt]);
      return product;
    },

    async listProducts(filter: { shopId?: string; limit: number; offset: number }): Promise<Product[]> {
      const rows = await db.query<ProductRow>(sql.listProducts, [filter.shopId ?? null, filter.limit, filter.offset]);
      return rows.map((r) => ({ id: r.id, shopId: r.shop_id, name: r.name, description: r.description, price: r.price, currency: r.currency, createdAt: r.created_at }));
    },

    /** Schedules a sale of the shop's own products; its stock rows are created in the same transaction. */
    async createFlashSale(shopId: string, input: NewFlashSale): Promise<FlashSale> {
      for (const field of ['startsAt', 'endsAt'] as const) {
        if (!storable(input[field])) throw new AppError('validation_failed', `${field} must be a real instant between 1970 and 9999 (UTC).`);
      }
      if (input.endsAt.getTime() <= input.startsAt.getTime()) throw new AppError('validation_failed', 'endsAt must be after startsAt.');
      input = { ...input, items: input.items.map((i) => ({ ...i, productId: i.productId.toLowerCase() })) };
      const productIds = input.items.map((i) => i.productId);
      if (new Set(productIds).size !== productIds.length) throw new AppError('validation_failed', 'A product may appear once per sale.');
      const saleId = randomUUID();
      const sale = await db.transaction(async (tx) => {
        const owned = await tx.query<{ id: string; name: string; currency: string }>(sql.productsOfShop, [shopId, productIds]);
        const byId = new Map(owned.map((p) => [p.id, p]));
        const missing = productIds.filter((id) => !byId.has(id));
        if (missing.length > 0) throw new AppError('unknown_product', undefined, { details: { productIds: missing } });
        const currencies = new Set(owned.map((p) => p.currency));
        if (currencies.size > 1) throw new AppError('validation_failed', 'All products of a sale must share one currency.');
        const sale: FlashSale = {
          id: saleId, shopId, name: input.name, startsAt: input.startsAt, endsAt: input.endsAt, paymentWindowS: input.paymentWindowS,
          holdMode: input.holdMode, currency: owned[0]!.currency, createdAt: clock.now(),
          items: input.items.map((i) => ({ id: randomUUID(), saleId, productId: i.productId, productName: byId.get(i.productId)!.name, flashPrice: i.flashPrice, stock: i.stock, perUserLimit: i.perUserLimit })),
        };
        await tx.query(sql.insertSale, [sale.id, shopId, sale.name, sale.startsAt, sale.endsAt, sale.paymentWindowS, sale.holdMode, sale.currency, sale.createdAt]);
        await tx.query(sql.insertSaleItems, [sale.id, sale.items.map((i) => i.id), sale.items.map((i) => i.productId), sale.items.map((i) => i.flashPrice), sale.items.map((i) => i.stock), sale.items.map((i) => i.perUserLimit)]);
        await inventory.provisionStock(tx, sale.items.map((i) => ({ saleItemId: i.id, saleId, stock: i.stock, perUserLimit: i.perUserLimit, startsAt: sale.startsAt, endsAt: sale.endsAt })));
        // In memory before the relay is nudged (emit adds that step): the sale is readable here before its event goes out.
        tx.afterCommit(() => remember(sale));
        await emit(tx, [{ topic: CatalogTopics.scheduled, payload: { saleId, shopId, startsAt: sale.startsAt.toISOString(), endsAt: sale.endsAt.toISOString() } satisfies SaleScheduled }]);
        return sale;
      });
      return sale;
    },

    /** Sales from memory, newest start first. */
    listFlashSales(filter: { shopId?: string; status?: SaleStatus } = {}): FlashSale[] {
      const now = clock.now();
      return [...sales.values()]
        .filter((s) => (!filter.shopId || s.shopId === filter.shopId.toLowerCase()) && (!filter.status || saleStatus(s, now) === filter.status))
        .sort((a, b) => b.startsAt.getTime() - a.startsAt.getTime());
    },

    getFlashSale: (saleId: string): FlashSale | undefined => sales.get(saleId),

    /** A sale from memory, or one database look on a miss (see findSaleItem). */
    async findFlashSale(saleId: string): Promise<FlashSale | undefined> {
      const known = sales.get(saleId);
      if (known) return known;
      if (recentlyMissing(saleId)) return undefined;
      await loadSales(await db.query<SaleRow>(`${sql.allSales} where id = $1`, [saleId]));
      const found = sales.get(saleId);
      if (!found) missing.set(saleId, performance.now() + 1000);
      return found;
    },
    getSaleItem: (saleItemId: string): SaleItem | undefined => items.get(saleItemId),
    /** How many not-found ids are remembered right now (at most CATALOG_NOT_FOUND_CACHE_MAX). */
    notFoundCached: (): number => missing.size,
    statusOf: (sale: FlashSale): SaleStatus => saleStatus(sale, clock.now()),
  };
}

export type Catalog = ReturnType<typeof createCatalog>;
export type SaleStatus = 'scheduled' | 'active' | 'ended';

const EARLIEST = Date.UTC(1970, 0, 1);
const LATEST = Date.UTC(10000, 0, 1) - 1;

/**
 * RFC 3339 admits instants that JS or PostgreSQL cannot hold: a leap second (`…T23:59:60Z`) is an
 * invalid Date, year 0000 or an offset past 9999 is refused by the database, years below 100 come back wrong.
 */
function storable(date: Date): boolean {
  const t = date.getTime();
  return t >= EARLIEST && t <= LATEST;
}

function saleStatus(sale: FlashSale, now: Date): SaleStatus {
  if (now < sale.startsAt) return 'scheduled';
  return now < sale.endsAt ? 'active' : 'ended';
}

interface ProductRow { id: string; shop_id: string; name: string; description: string; price: number; currency: string; created_at: Date }
interface SaleRow { id: string; shop_id: string; name: string; starts_at: Date; ends_at: Date; payment_window_s: number; hold_mode: HoldMode; currency: string; created_at: Date }
interface ItemRow { id: string; sale_id: string; product_id: string; product_name: string; flash_price: number; stock: number; per_user_limit: number }

function toSale(r: SaleRow, saleItems: SaleItem[]): FlashSale {
  return { id: r.id, shopId: r.shop_id, name: r.name, startsAt: r.starts_at, endsAt: r.ends_at, paymentWindowS: r.payment_window_s, holdMode: r.hold_mode, currency: r.currency, createdAt: r.created_at, items: saleItems };
}

function toItem(r: ItemRow): SaleItem {
  return { id: r.id, saleId: r.sale_id, productId: r.product_id, productName: r.product_name, flashPrice: r.flash_price, stock: r.stock, perUserLimit: r.per_user_limit };
}
