import { stringify } from 'csv-stringify/sync';
import type { OrderStatus, SaleOrdersPage } from '../order/index.ts';
import { shopIdOf, type FulfillmentContext } from './context.ts';
import * as sql from './sql.ts';

export interface ShopOrdersFilter {
  saleId?: string;
  saleItemId?: string;
  status?: OrderStatus;
  /** Orders created at or after `from`, before `to`. */
  from?: Date;
  to?: Date;
}

/** The most lines one export writes: a merchant with more narrows the filter (dates, sale). */
export const EXPORT_MAX_ORDERS = 10_000;

/** The sales of the merchant's shop the filter names: one (if it is theirs), or all of them. */
async function salesOf(ctx: FulfillmentContext, merchantId: string, saleId: string | undefined): Promise<string[]> {
  const shopId = await shopIdOf(ctx, merchantId);
  if (saleId) return (await ctx.catalog.findFlashSale(saleId))?.shopId === shopId ? [saleId] : [];
  return ctx.catalog.listFlashSales({ shopId }).map((s) => s.id);
}

/** The merchant's orders (their invoices), newest first, filtered and paged, with totals over every page. */
export async function listShopOrders(ctx: FulfillmentContext, merchantId: string, filter: ShopOrdersFilter & { limit: number; offset: number }): Promise<SaleOrdersPage> {
  return ctx.orders.listSaleOrders({ ...filter, saleIds: await salesOf(ctx, merchantId, filter.saleId) });
}

const COLUMNS = [
  'order_id', 'created_at', 'status', 'buyer_id', 'sale_id', 'sale_item_id', 'product_id', 'product_name', 'quantity', 'unit_price', 'line_amount', 'currency',
  'line_status', 'shipment_id', 'shipment_status', 'carrier', 'tracking_number',
];

/**
 * The same orders as CSV, one row per order line, with the line's shipment: RFC 4180 quoting by
 * csv-stringify (a product name may hold commas, quotes, newlines); a cell that a spreadsheet would
 * run as a formula is prefixed with a quote.
 */
export async function exportShopOrders(ctx: FulfillmentContext, merchantId: string, filter: ShopOrdersFilter): Promise<string> {
  const { orders } = await ctx.orders.listSaleOrders({ ...filter, saleIds: await salesOf(ctx, merchantId, filter.saleId), limit: EXPORT_MAX_ORDERS, offset: 0 });
  const tracking = await ctx.db.query<{ order_id: string; sale_item_id: string; line_status: string; shipment_id: string; status: string; carrier: string | null; tracking_number: string | null }>(
    sql.trackingOfOrders, [orders.map((o) => o.id)]);
  const lineOf = new Map(tracking.map((t) => [`${t.order_id}/${t.sale_item_id}`, t]));
  const rows: unknown[][] = [];
  for (const o of orders) {
    for (const i of o.items) {
      const t = lineOf.get(`${o.id}/${i.saleItemId}`);
      const shipped = t && t.line_status === 'SHIPPED';
      rows.push([
        o.id, o.createdAt.toISOString(), o.status, o.userId, o.saleId, i.saleItemId, i.productId, (await ctx.catalog.findSaleItem(i.saleItemId))?.productName ?? '',
        i.quantity, i.unitPrice, i.quantity * i.unitPrice, o.currency,
        i.cancelledAt ? 'CANCELLED' : (t?.line_status ?? ''), shipped ? t.shipment_id : '', shipped ? t.status : '', shipped ? t.carrier ?? '' : '', shipped ? t.tracking_number ?? '' : '',
      ].map(noFormula));
    }
  }
  return stringify(rows, { header: true, columns: COLUMNS, record_delimiter: 'windows' });
}

/** A text cell starting with = + - @ is a formula to a spreadsheet (CSV injection): quoted as text. */
function noFormula(cell: unknown): unknown {
  return typeof cell === 'string' && /^[=+\-@\t\r]/.test(cell) ? `'${cell}` : cell;
}
