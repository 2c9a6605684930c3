import type { Database } from '../platform/database/index.ts';
import { loadOrders, type Order, type OrderRow, type OrderStatus } from './model.ts';
import * as sql from './sql.ts';

export interface SaleOrdersFilter {
  /** The merchant's sales: only their orders are read. */
  saleIds: readonly string[];
  saleItemId?: string;
  status?: OrderStatus;
  /** Created at or after `from`, before `to`. */
  from?: Date;
  to?: Date;
  limit: number;
  offset: number;
}

/** Per currency: units and money of the matching orders' lines not cancelled (the filtered item's lines only, with `saleItemId`). */
export interface SaleOrdersTotal { currency: string; units: number; amount: number }

export interface SaleOrdersPage {
  orders: Order[];
  /** Orders matching the filter, over every page. */
  total: number;
  totals: SaleOrdersTotal[];
}

/** The orders of a merchant's sales (the merchant's invoices): filtered, paged, with totals over every page. */
export async function listSaleOrders(db: Database, f: SaleOrdersFilter): Promise<SaleOrdersPage> {
  if (f.saleIds.length === 0) return { orders: [], total: 0, totals: [] };
  const where = [f.saleIds, f.saleItemId ?? null, f.status ?? null, f.from ?? null, f.to ?? null];
  const [rows, [count], totals] = await Promise.all([
    db.query<OrderRow>(sql.shopOrders, [...where, f.limit, f.offset]),
    db.query<{ n: number }>(sql.shopOrderCount, where),
    db.query<{ currency: string; units: number; amount: string }>(sql.shopOrderTotals, where),
  ]);
  return {
    orders: await loadOrders(db, rows),
    total: Number(count?.n ?? 0),
    totals: totals.map((t) => ({ currency: t.currency, units: Number(t.units), amount: Number(t.amount) })),
  };
}
