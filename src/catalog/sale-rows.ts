import type { Tx } from '../platform/database/index.ts';
import { AppError } from '../platform/errors.ts';
import { toItem, toSale, type FlashSale, type ItemRow, type SaleRow } from './model.ts';
import * as sql from './sql.ts';

/** The shop's sale, row-locked for a change in the caller's transaction; another shop's sale is not found. */
export async function lockSaleOfShop(tx: Tx, saleId: string, shopId: string): Promise<SaleRow> {
  const [row] = await tx.query<SaleRow>(sql.lockSaleOfShop, [saleId.toLowerCase(), shopId]);
  if (!row) throw new AppError('not_found', 'No such flash sale in your shop.');
  return row;
}

/** The sale as it now is in this transaction, with its items. */
export async function saleWithItems(tx: Tx, row: SaleRow): Promise<FlashSale> {
  const items = await tx.query<ItemRow>(sql.itemsOfSale, [row.id]);
  return toSale(row, items.map(toItem));
}

/** A sale a change may no longer touch: cancelled, or ended by the clock. */
export function refuseIfClosed(row: SaleRow, now: Date): void {
  if (row.cancelled_at) throw new AppError('sale_cancelled');
  if (now >= row.ends_at) throw new AppError('sale_ended');
}
