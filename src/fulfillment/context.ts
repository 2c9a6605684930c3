import type { Clock } from '../platform/clock.ts';
import type { Database, Queryable } from '../platform/database/index.ts';
import type { Emit } from '../platform/broker/outbox.ts';
import type { Logger } from '../platform/logger.ts';
import { AppError } from '../platform/errors.ts';
import type { Catalog } from '../catalog/index.ts';
import type { Inventory } from '../inventory/index.ts';
import type { Order, Orders } from '../order/index.ts';
import type { Shipment, ShipmentLineStatus, ShipmentStatus } from './contracts.ts';
import * as sql from './sql.ts';

/** The dependencies every fulfillment use case shares, built once by `createFulfillment`. */
export interface FulfillmentContext {
  db: Database;
  clock: Clock;
  emit: Emit;
  orders: Pick<Orders, 'getOrder' | 'lockOrder' | 'cancelLines' | 'markFulfilled' | 'markLinesShipped' | 'listSaleOrders'>;
  catalog: Pick<Catalog, 'findFlashSale' | 'listFlashSales' | 'findSaleItem'>;
  inventory: Pick<Inventory, 'holdsOfOrders'>;
  /** The merchant's shop (accounts.shopOf). */
  shopOf: (userId: string) => Promise<{ id: string } | undefined>;
  log: Logger;
}

export interface ShipmentRow {
  id: string; order_id: string; shop_id: string; user_id: string; sale_id: string; status: ShipmentStatus; carrier: string | null; tracking_number: string | null;
  created_at: Date; shipped_at: Date | null; delivered_at: Date | null;
}

interface LineRow { shipment_id: string; sale_item_id: string; quantity: number; status: ShipmentLineStatus }

/** Shipments with their lines, in the rows' order. */
export async function loadShipments(q: Queryable, rows: readonly ShipmentRow[]): Promise<Shipment[]> {
  if (rows.length === 0) return [];
  const lines = await q.query<LineRow>(sql.linesOfShipments, [rows.map((r) => r.id)]);
  return rows.map((r) => ({
    id: r.id, orderId: r.order_id, status: r.status, carrier: r.carrier, trackingNumber: r.tracking_number,
    createdAt: r.created_at, shippedAt: r.shipped_at, deliveredAt: r.delivered_at,
    items: lines.filter((l) => l.shipment_id === r.id).map((l) => ({ saleItemId: l.sale_item_id, quantity: l.quantity, status: l.status })),
  }));
}

/** The merchant's shop id; a merchant without a shop may do nothing here. */
export async function shopIdOf(ctx: FulfillmentContext, userId: string): Promise<string> {
  const shop = await ctx.shopOf(userId);
  if (!shop) throw new AppError('forbidden', 'This merchant has no shop.');
  return shop.id;
}

/** The shop that sold the order (its sale's); undefined for a sale this system does not know. */
export async function shopOfOrder(ctx: FulfillmentContext, order: Pick<Order, 'saleId'>): Promise<string | undefined> {
  return (await ctx.catalog.findFlashSale(order.saleId))?.shopId;
}

/** Another shop's order is indistinguishable from a missing one. */
export function notYours(): AppError {
  return new AppError('not_found', 'No such order.');
}
