import { AppError } from '../platform/errors.ts';
import { CatalogTopics, type SaleStockAdded } from './contracts.ts';
import type { CatalogContext } from './context.ts';
import type { FlashSale, SaleRow } from './model.ts';
import { lockSaleOfShop, refuseIfClosed, saleWithItems } from './sale-rows.ts';
import * as sql from './sql.ts';

/**
 * Adds units to an item of a sale that is scheduled or running: the item's stock, its stock row's
 * initial and available (together, so the audit stays balanced), then the gate in place after
 * commit — admissions in flight stay counted — and the item's sold-out flag cleared everywhere.
 */
export async function addSaleStock(ctx: CatalogContext, remember: (sale: FlashSale) => void, shopId: string, saleId: string, saleItemId: string, quantity: number): Promise<FlashSale> {
  const { db, clock, inventory, emit } = ctx;
  if (!Number.isSafeInteger(quantity) || quantity < 1) throw new AppError('validation_failed', 'quantity must be a positive integer.');
  return db.transaction(async (tx) => {
    const row = await lockSaleOfShop(tx, saleId, shopId);
    const itemId = saleItemId.toLowerCase();
    const [added] = await tx.query<{ id: string }>(sql.addSaleItemStock, [itemId, row.id, quantity]);
    if (!added) throw new AppError('not_found', 'No such item in this sale.');
    const [stock] = await inventory.lockStock(tx, [itemId]);
    const now = clock.now();
    refuseIfClosed(row, now);
    await inventory.adjustStock(tx, [{ saleItemId: itemId, delta: quantity, perUserLimit: stock!.perUserLimit, startsAt: stock!.onSaleFrom, endsAt: stock!.onSaleUntil }]);
    const [touched] = await tx.query<SaleRow>(sql.touchSale, [row.id, now]);
    const sale = await saleWithItems(tx, touched!);
    tx.afterCommit(() => remember(sale));
    await emit(tx, [{ topic: CatalogTopics.stockAdded, payload: { saleId: sale.id, shopId, saleItemId: itemId, quantity } satisfies SaleStockAdded }]);
    return sale;
  });
}
