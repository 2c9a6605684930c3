import { randomUUID } from 'node:crypto';
import { AppError } from '../platform/errors.ts';
import { CatalogTopics, type SaleEnded, type SaleScheduled } from './contracts.ts';
import type { CatalogContext } from './context.ts';
import { saleEndsSettledAt, type FlashSale, type NewFlashSale } from './model.ts';
import * as sql from './sql.ts';

/**
 * Schedules a sale of the shop's own products; its stock rows are created in the same transaction.
 * `remember` is told the sale once it committed (the warm catalog's copy).
 */
export async function createFlashSale(ctx: CatalogContext, remember: (sale: FlashSale) => void, shopId: string, input: NewFlashSale): Promise<FlashSale> {
  const { db, clock, inventory, emit } = ctx;
  input = validated(input);
  const productIds = input.items.map((i) => i.productId);
  const saleId = randomUUID();
  return db.transaction(async (tx) => {
    const owned = await tx.query<{ id: string; name: string; currency: string }>(sql.productsOfShop, [shopId, productIds]);
    const byId = new Map(owned.map((p) => [p.id, p]));
    const missing = productIds.filter((id) => !byId.has(id));
    if (missing.length > 0) throw new AppError('unknown_product', undefined, { details: { productIds: missing } });
    const currencies = new Set(owned.map((p) => p.currency));
    if (currencies.size > 1) throw new AppError('validation_failed', 'All products of a sale must share one currency.');
    const sale: FlashSale = {
      id: saleId, shopId, name: input.name, startsAt: input.startsAt, endsAt: input.endsAt, paymentWindowS: input.paymentWindowS,
      holdMode: input.holdMode, currency: owned[0]!.currency, createdAt: clock.now(), cancelledAt: null, version: 1, updatedAt: clock.now(),
      items: input.items.map((i) => ({ id: randomUUID(), saleId, productId: i.productId, productName: byId.get(i.productId)!.name, flashPrice: i.flashPrice, stock: i.stock, perUserLimit: i.perUserLimit })),
    };
    await tx.query(sql.insertSale, [sale.id, shopId, sale.name, sale.startsAt, sale.endsAt, sale.paymentWindowS, sale.holdMode, sale.currency, sale.createdAt]);
    await tx.query(sql.insertSaleItems, [sale.id, sale.items.map((i) => i.id), sale.items.map((i) => i.productId), sale.items.map((i) => i.flashPrice), sale.items.map((i) => i.stock), sale.items.map((i) => i.perUserLimit)]);
    await inventory.provisionStock(tx, sale.items.map((i) => ({ saleItemId: i.id, saleId, stock: i.stock, perUserLimit: i.perUserLimit, startsAt: sale.startsAt, endsAt: sale.endsAt })));
    // In memory before the relay is nudged (emit adds that step): the sale is readable here before its event goes out.
    tx.afterCommit(() => remember(sale));
    await emit(tx, [
      { topic: CatalogTopics.scheduled, payload: { saleId, shopId, startsAt: sale.startsAt.toISOString(), endsAt: sale.endsAt.toISOString() } satisfies SaleScheduled },
      { topic: CatalogTopics.ended, payload: { saleId, shopId } satisfies SaleEnded, delayMs: Math.max(0, saleEndsSettledAt(sale) - clock.now().getTime()) },
    ]);
    return sale;
  });
}

/** The checks a sale passes before the database is asked anything; product ids in their one (lower-case) spelling. */
export function validated(input: NewFlashSale): NewFlashSale {
  for (const field of ['startsAt', 'endsAt'] as const) {
    if (!storable(input[field])) throw new AppError('validation_failed', `${field} must be a real instant between 1970 and 9999 (UTC).`);
  }
  if (input.endsAt.getTime() <= input.startsAt.getTime()) throw new AppError('validation_failed', 'endsAt must be after startsAt.');
  const normalized = { ...input, items: input.items.map((i) => ({ ...i, productId: i.productId.toLowerCase() })) };
  const productIds = normalized.items.map((i) => i.productId);
  if (new Set(productIds).size !== productIds.length) throw new AppError('validation_failed', 'A product may appear once per sale.');
  return normalized;
}

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
