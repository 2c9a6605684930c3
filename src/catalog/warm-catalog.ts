import type { Clock } from '../platform/clock.ts';
import type { Database } from '../platform/database/index.ts';
import { LruMap } from '../platform/lru.ts';
import type { Catalog } from './index.ts';
import { saleStatus, toItem, toSale, type FlashSale, type ItemRow, type SaleItem, type SaleRow } from './model.ts';
import * as sql from './sql.ts';

/**
 * The warm catalog: every sale in memory, because sales are read on the hot path. Loaded at start,
 * added to after each commit of this process, refreshed with what other processes created; reads
 * never query the database except once on a miss. Its members are documented on `Catalog`.
 */
export type WarmCatalog = Pick<Catalog,
  | 'warm' | 'refresh' | 'startRefreshing' | 'stopRefreshing'
  | 'findSaleItem' | 'findFlashSale' | 'getSaleItem' | 'getFlashSale' | 'listFlashSales' | 'notFoundCached'> & {
  /** Adds (or replaces, when newer) a sale this process just committed. */
  remember(sale: FlashSale): void;
};

export function createWarmCatalog({ db, clock }: { db: Database; clock: Clock }, notFoundCacheMax: number): WarmCatalog {
  const sales = new Map<string, FlashSale>();
  const items = new Map<string, SaleItem>();
  /** Newest change seen: a refresh reads only what other processes created or changed since (less a margin). */
  let seenUpTo = new Date(0);
  const missing = notFoundCache(notFoundCacheMax);
  let refreshTimer: NodeJS.Timeout | undefined;

  function remember(sale: FlashSale): void {
    const held = sales.get(sale.id);
    if (held && held.version > sale.version) return;
    if (held) for (const item of held.items) items.delete(item.id);
    sales.set(sale.id, sale);
    for (const item of sale.items) items.set(item.id, item);
    if (sale.updatedAt > seenUpTo) seenUpTo = sale.updatedAt;
  }

  async function loadSales(saleRows: SaleRow[]): Promise<number> {
    if (saleRows.length === 0) return 0;
    const itemRows = await db.query<ItemRow>(sql.itemsOfSales, [saleRows.map((r) => r.id)]);
    for (const row of saleRows) remember(toSale(row, itemRows.filter((i) => i.sale_id === row.id).map(toItem)));
    return saleRows.length;
  }

  const loadSale = async (saleId: string) => loadSales(await db.query<SaleRow>(`${sql.allSales} where id = $1`, [saleId]));

  /**
   * Sales created or changed by any process since the last look (several API processes share one
   * database): a row whose version is newer than ours is reloaded with its items. The look goes
   * back a margin, because a transaction stamped earlier may commit after a later one was seen.
   */
  async function refresh(): Promise<number> {
    const rows = await db.query<SaleRow>(sql.salesChangedSince, [new Date(seenUpTo.getTime() - REFRESH_MARGIN_MS)]);
    return loadSales(rows.filter((r) => (sales.get(r.id)?.version ?? 0) < r.version));
  }

  /** Looks on a miss now in flight, by id: a crowd asking for one unknown id at once shares one. */
  const looking = new Map<string, Promise<unknown>>();

  /**
   * A miss costs one database look (another process may have just created the id), remembered for
   * a second when the id does not exist.
   */
  async function lookUpOnMiss<T>(id: string, load: () => Promise<T | undefined>): Promise<T | undefined> {
    if (missing.has(id)) return undefined;
    const inFlight = looking.get(id) as Promise<T | undefined> | undefined;
    if (inFlight) return inFlight;
    const look = load().then((found) => {
      if (!found) missing.add(id);
      return found;
    }).finally(() => looking.delete(id));
    looking.set(id, look);
    return look;
  }

  return {
    async warm() {
      const saleRows = await db.query<SaleRow>(sql.allSales);
      const bySale = groupBySale(await db.query<ItemRow>(sql.allSaleItems));
      for (const row of saleRows) remember(toSale(row, bySale.get(row.id) ?? []));
      return saleRows.length;
    },
    refresh,
    startRefreshing(intervalMs) {
      clearInterval(refreshTimer);
      refreshTimer = setInterval(() => void refresh().catch(() => {}), intervalMs);
      refreshTimer.unref();
    },
    stopRefreshing() {
      clearInterval(refreshTimer);
    },
    remember,
    findSaleItem: async (saleItemId) => items.get(saleItemId) ?? lookUpOnMiss(saleItemId, async () => {
      const [row] = await db.query<{ sale_id: string }>(sql.saleOfItem, [saleItemId]);
      if (row) await loadSale(row.sale_id);
      return items.get(saleItemId);
    }),
    findFlashSale: async (saleId) => sales.get(saleId) ?? lookUpOnMiss(saleId, async () => {
      await loadSale(saleId);
      return sales.get(saleId);
    }),
    getSaleItem: (saleItemId) => items.get(saleItemId),
    getFlashSale: (saleId) => sales.get(saleId),
    listFlashSales(filter = {}) {
      const now = clock.now();
      return [...sales.values()]
        .filter((s) => (!filter.shopId || s.shopId === filter.shopId.toLowerCase()) && (!filter.status || saleStatus(s, now) === filter.status))
        .sort((a, b) => b.startsAt.getTime() - a.startsAt.getTime());
    },
    notFoundCached: () => missing.size,
  };
}

/** How far back each refresh looks past the newest change seen (commits land out of stamp order). */
const REFRESH_MARGIN_MS = 10_000;

function groupBySale(itemRows: readonly ItemRow[]): Map<string, SaleItem[]> {
  const bySale = new Map<string, SaleItem[]>();
  for (const row of itemRows) {
    const list = bySale.get(row.sale_id) ?? [];
    list.push(toItem(row));
    bySale.set(row.sale_id, list);
  }
  return bySale;
}

/**
 * Ids recently looked up and not found (until when, on the monotonic clock), so garbage ids cannot
 * make every request query the DB. Bounded: the ids are the client's to choose.
 */
function notFoundCache(capacity: number) {
  const until = new LruMap<string, number>(capacity);
  return {
    /** Whether `id` was found missing less than a second ago; a stale entry is dropped. */
    has(id: string): boolean {
      const expiry = until.get(id);
      if (expiry === undefined) return false;
      if (expiry > performance.now()) return true;
      until.delete(id);
      return false;
    },
    add: (id: string): void => void until.set(id, performance.now() + 1000),
    get size(): number {
      return until.size;
    },
  };
}
