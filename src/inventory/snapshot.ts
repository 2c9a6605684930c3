import type { InventoryContext } from './context.ts';
import type { StockSnapshot } from './model.ts';

/**
 * The burn-down and the hold states, for the metrics sampler: stock_items has one row per sale item
 * and keeps every state's count itself, so this never scans the holds.
 */
export async function stockSnapshot({ db, clock }: InventoryContext, windowMs: number): Promise<StockSnapshot> {
  const now = clock.now().getTime();
  const rows = await db.query<{ sale_id: string; sale_item_id: string; initial: number; available: number; held: number; sold: number; written_off: number; live: boolean }>(
    `select sale_id, sale_item_id, initial, available, held, sold, written_off,
            (on_sale_from <= $2 and on_sale_until >= $1) as live
       from stock_items`,
    [new Date(now - windowMs).toISOString(), new Date(now + windowMs).toISOString()],
  );
  const totals = { initial: 0, available: 0, held: 0, sold: 0, writtenOff: 0 };
  const items: StockSnapshot['items'] = [];
  for (const r of rows) {
    const units = { initial: Number(r.initial), available: Number(r.available), held: Number(r.held), sold: Number(r.sold), writtenOff: Number(r.written_off) };
    totals.initial += units.initial;
    totals.available += units.available;
    totals.held += units.held;
    totals.sold += units.sold;
    totals.writtenOff += units.writtenOff;
    if (r.live) items.push({ saleId: r.sale_id, saleItemId: r.sale_item_id, ...units });
  }
  return { items, totals };
}
