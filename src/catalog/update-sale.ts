import { randomUUID } from 'node:crypto';
import { AppError } from '../platform/errors.ts';
import { CatalogTopics, type SaleEnded, type SaleUpdated } from './contracts.ts';
import type { CatalogContext } from './context.ts';
import { saleEndsSettledAt, type FlashSale, type ItemRow, type SaleChanges } from './model.ts';
import { validated } from './sales.ts';
import { lockSaleOfShop, refuseIfClosed, saleWithItems } from './sale-rows.ts';
import * as sql from './sql.ts';

/**
 * Edits a scheduled sale: name, times, payment window, and its items (the whole new list, matched
 * to the old one by product: kept items take the new price, stock and limit, new ones are added,
 * missing ones taken out). Refused once the sale has started. The check is made under the sale's
 * row lock and its items' stock locks — the locks a purchase batch takes — so an edit and the first
 * buyer are ordered: a batch that waited for the edit re-reads the new window and refuses.
 */
export async function updateFlashSale(ctx: CatalogContext, remember: (sale: FlashSale) => void, shopId: string, saleId: string, changes: SaleChanges): Promise<FlashSale> {
  const { db, clock, inventory, emit } = ctx;
  return db.transaction(async (tx) => {
    const row = await lockSaleOfShop(tx, saleId, shopId);
    const oldItems = await tx.query<ItemRow>(sql.itemsOfSale, [row.id]);
    await inventory.lockStock(tx, oldItems.map((i) => i.id));
    const now = clock.now();
    refuseIfClosed(row, now);
    if (now >= row.starts_at) throw new AppError('sale_started');

    const next = validated({
      name: changes.name ?? row.name,
      startsAt: changes.startsAt ?? row.starts_at,
      endsAt: changes.endsAt ?? row.ends_at,
      paymentWindowS: changes.paymentWindowS ?? row.payment_window_s,
      holdMode: row.hold_mode,
      items: changes.items ?? oldItems.map((i) => ({ productId: i.product_id, flashPrice: i.flash_price, stock: i.stock, perUserLimit: i.per_user_limit })),
    });
    if (next.endsAt <= now) throw new AppError('validation_failed', 'endsAt must be in the future.');

    const byProduct = new Map(oldItems.map((i) => [i.product_id, i]));
    const kept = next.items.filter((i) => byProduct.has(i.productId));
    const added = next.items.filter((i) => !byProduct.has(i.productId));
    const wanted = new Set(next.items.map((i) => i.productId));
    const removed = oldItems.filter((i) => !wanted.has(i.product_id)).map((i) => i.id);

    if (added.length > 0) {
      const owned = await tx.query<{ id: string; currency: string }>(sql.productsOfShop, [shopId, added.map((i) => i.productId)]);
      const known = new Map(owned.map((p) => [p.id, p]));
      const missing = added.filter((i) => !known.has(i.productId)).map((i) => i.productId);
      if (missing.length > 0) throw new AppError('unknown_product', undefined, { details: { productIds: missing } });
      if (owned.some((p) => p.currency !== row.currency)) throw new AppError('validation_failed', 'All products of a sale must share one currency.');
    }

    await inventory.withdrawStock(tx, removed);
    if (removed.length > 0) await tx.query(sql.deleteSaleItems, [removed]);
    for (const item of kept) {
      const old = byProduct.get(item.productId)!;
      await tx.query(sql.updateSaleItem, [old.id, item.flashPrice, item.stock, item.perUserLimit]);
    }
    // Before the start nothing is taken, so an item's stock is its initial: the delta is the change.
    await inventory.adjustStock(tx, kept.map((item) => ({
      saleItemId: byProduct.get(item.productId)!.id, delta: item.stock - byProduct.get(item.productId)!.stock,
      perUserLimit: item.perUserLimit, startsAt: next.startsAt, endsAt: next.endsAt,
    })));
    if (added.length > 0) {
      const ids = added.map(() => randomUUID());
      await tx.query(sql.insertSaleItems, [row.id, ids, added.map((i) => i.productId), added.map((i) => i.flashPrice), added.map((i) => i.stock), added.map((i) => i.perUserLimit)]);
      await inventory.provisionStock(tx, added.map((i, k) => ({ saleItemId: ids[k]!, saleId: row.id, stock: i.stock, perUserLimit: i.perUserLimit, startsAt: next.startsAt, endsAt: next.endsAt })));
    }

    const [updated] = await tx.query<typeof row>(sql.updateSale, [row.id, next.name, next.startsAt, next.endsAt, next.paymentWindowS, now]);
    const sale = await saleWithItems(tx, updated!);
    tx.afterCommit(() => remember(sale));
    await emit(tx, [
      { topic: CatalogTopics.updated, payload: { saleId: sale.id, shopId, version: sale.version, startsAt: sale.startsAt.toISOString(), endsAt: sale.endsAt.toISOString() } satisfies SaleUpdated },
      // The end moved: announce it then too (the earlier message finds the sale not over, or is a duplicate).
      { topic: CatalogTopics.ended, payload: { saleId: sale.id, shopId } satisfies SaleEnded, delayMs: Math.max(0, saleEndsSettledAt(sale) - now.getTime()) },
    ]);
    return sale;
  });
}
