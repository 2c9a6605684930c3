import type { Tx } from '../platform/database/index.ts';
import type { Order } from '../order/index.ts';
import type { FulfillmentContext } from './context.ts';
import * as sql from './sql.ts';

/**
 * Opens a paid order's shipment (id = the order's id), one PENDING line per order line not
 * cancelled. Idempotent: the order-paid consumer, and a merchant acting before it ran, may both
 * open it. An order no longer PAID (cancelled by an admin meanwhile) gets none.
 */
export async function openShipment(ctx: FulfillmentContext, tx: Tx, order: Order, shopId: string): Promise<void> {
  if (order.status !== 'PAID') return;
  // One shipment line per item: a cart may hold one item twice (two order lines, two holds).
  const units = new Map<string, number>();
  for (const i of order.items) if (i.cancelledAt === null) units.set(i.saleItemId, (units.get(i.saleItemId) ?? 0) + i.quantity);
  await tx.query(sql.openShipment, [order.id, shopId, order.userId, order.saleId, ctx.clock.now()]);
  await tx.query(sql.openLines, [order.id, [...units.keys()], [...units.values()]]);
}

/**
 * order.paid, in the delivery's transaction: the shipment is opened. The order is read in that
 * transaction (locked, as a merchant's action would): embedded PGlite has one connection.
 */
export async function onOrderPaid(ctx: FulfillmentContext, tx: Tx, paid: { orderId: string }): Promise<void> {
  const order = await ctx.orders.lockOrder(tx, paid.orderId);
  if (!order) {
    ctx.log.warn({ orderId: paid.orderId }, 'order.paid for an order that cannot be read: no shipment');
    return;
  }
  const shopId = (await ctx.catalog.findFlashSale(order.saleId))?.shopId;
  if (!shopId) {
    ctx.log.warn({ orderId: order.id, saleId: order.saleId }, 'order.paid for a sale that cannot be read: no shipment');
    return;
  }
  await openShipment(ctx, tx, order, shopId);
}

/** order.cancelled (an admin cancelled a paid order, or the merchant its last line): nothing is left to ship. */
export async function onOrderCancelled(ctx: FulfillmentContext, tx: Tx, cancelled: { orderId: string }): Promise<void> {
  await tx.query(sql.cancelPendingLines, [cancelled.orderId]);
  await tx.query(sql.closeEmptyShipment, [cancelled.orderId, ctx.clock.now()]);
}
