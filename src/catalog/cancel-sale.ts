import { AppError } from '../platform/errors.ts';
import { CatalogTopics, type SaleCancelled } from './contracts.ts';
import type { CatalogContext } from './context.ts';
import type { FlashSale, ItemRow, SaleRow } from './model.ts';
import { lockSaleOfShop, saleWithItems } from './sale-rows.ts';
import * as sql from './sql.ts';

/**
 * Cancels a sale, before or during it. In one transaction, under the items' stock locks (the locks
 * a purchase batch takes): the sale is marked cancelled, every item's window closes now — in the
 * database, which every later batch re-reads and refuses by, and after commit in the gate, which
 * then admits nobody — and the cart holds no order took are released. Orders are order's: it
 * consumes `sale.cancelled` and closes every pending order of the sale (their payments voided at
 * the provider, or refunded if one was taken meanwhile), and the buyers are notified. A batch
 * committed before the cancel took its locks is among the orders order finds; none commits after.
 * Cancelling again answers the cancelled sale.
 */
export async function cancelFlashSale(ctx: CatalogContext, remember: (sale: FlashSale) => void, shopId: string, saleId: string): Promise<FlashSale> {
  const { db, clock, inventory, emit } = ctx;
  return db.transaction(async (tx) => {
    const row = await lockSaleOfShop(tx, saleId, shopId);
    if (row.cancelled_at) return saleWithItems(tx, row);
    const items = await tx.query<ItemRow>(sql.itemsOfSale, [row.id]);
    const stock = await inventory.lockStock(tx, items.map((i) => i.id));
    const now = clock.now();
    if (now >= row.ends_at) throw new AppError('sale_ended');
    await inventory.adjustStock(tx, stock.map((s) => ({
      saleItemId: s.saleItemId, delta: 0, perUserLimit: s.perUserLimit, startsAt: s.onSaleFrom, endsAt: s.onSaleUntil < now ? s.onSaleUntil : now,
    })));
    const cartHolds = await inventory.cartHoldsOfItems(tx, items.map((i) => i.id));
    if (cartHolds.length > 0) await inventory.releaseHolds(tx, cartHolds, 'sale_cancelled');
    const [cancelled] = await tx.query<SaleRow>(sql.cancelSale, [row.id, now]);
    const sale = await saleWithItems(tx, cancelled!);
    tx.afterCommit(() => remember(sale));
    // The merchant's summary follows order's `order.sale_closed`, once the pending orders are closed.
    await emit(tx, [{ topic: CatalogTopics.cancelled, payload: { saleId: sale.id, shopId, cancelledAt: now.toISOString() } satisfies SaleCancelled }]);
    return sale;
  });
}
