import { randomUUID } from 'node:crypto';
import type { Tx } from '../platform/database/index.ts';
import { AppError } from '../platform/errors.ts';
import type { Order } from '../order/index.ts';
import { FulfillmentTopics, type Shipment, type ShipmentDelivered, type ShipmentLineStatus, type ShipmentShipped } from './contracts.ts';
import { loadShipments, notYours, shopIdOf, shopOfOrder, type FulfillmentContext, type ShipmentRow } from './context.ts';
import { openShipment } from './open.ts';
import * as sql from './sql.ts';

export interface NewShipment {
  carrier: string;
  trackingNumber: string;
  /** The lines leaving now; every line still pending when absent. */
  saleItemIds?: string[];
}

interface OrderLine { sale_item_id: string; shipment_id: string; quantity: number; status: ShipmentLineStatus }

/**
 * The merchant's order, locked (FOR UPDATE, so shipping, cancelling lines and an admin cancel take
 * turns), with its lines locked too; its shipment opened if the order-paid consumer has not run yet.
 * Everything it reads outside the transaction (the merchant's shop) is read before it: embedded
 * PGlite has one connection, which the open transaction holds.
 */
export async function lockMerchantOrder(ctx: FulfillmentContext, tx: Tx, shopId: string, orderId: string): Promise<{ order: Order; lines: OrderLine[] }> {
  const order = await ctx.orders.lockOrder(tx, orderId);
  if (!order || (await shopOfOrder(ctx, order)) !== shopId) throw notYours();
  if (order.status !== 'PAID') throw new AppError('invalid_state', `The order is ${order.status}; only a PAID order has lines to ship or cancel.`);
  await openShipment(ctx, tx, order, shopId);
  return { order, lines: await tx.query<OrderLine>(sql.linesOfOrder, [orderId]) };
}

/** The order is FULFILLED once no line is left pending (and one has shipped: otherwise every line was cancelled and the order is CANCELLED). */
export async function fulfilIfDone(ctx: FulfillmentContext, tx: Tx, orderId: string): Promise<void> {
  const [{ n }] = (await tx.query<{ n: number }>(sql.pendingLineCount, [orderId])) as [{ n: number }];
  if (n === 0) await ctx.orders.markFulfilled(tx, orderId);
}

/**
 * The merchant ships lines of a PAID order with a carrier and tracking number: all the lines still
 * pending leave in the order's own shipment, a part of them in a shipment of their own (a partial
 * shipment). The buyer hears of it (`shipment.shipped`); the last pending line shipped makes the
 * order FULFILLED.
 */
export async function createShipment(ctx: FulfillmentContext, merchantId: string, orderId: string, input: NewShipment): Promise<Shipment> {
  const { db, clock, emit } = ctx;
  const shopId = await shopIdOf(ctx, merchantId);
  const row = await db.transaction(async (tx) => {
    const { order, lines } = await lockMerchantOrder(ctx, tx, shopId, orderId);
    const pending = lines.filter((l) => l.status === 'PENDING');
    const wanted = input.saleItemIds ? [...new Set(input.saleItemIds)] : pending.map((l) => l.sale_item_id);
    const notPending = wanted.filter((id) => !pending.some((l) => l.sale_item_id === id));
    if (notPending.length > 0 || wanted.length === 0) {
      throw new AppError('invalid_state', notPending.length > 0 ? `Not a pending line of this order: ${notPending.join(', ')}.` : 'No line of this order is left to ship.');
    }
    const now = clock.now();
    // Every pending line leaving: the order's own shipment goes, and nothing is left to ship.
    const completesOrder = wanted.length === pending.length;
    let shipmentId = order.id;
    if (completesOrder) {
      await tx.query(sql.shipWhole, [order.id, input.carrier, input.trackingNumber, now]);
    } else {
      shipmentId = randomUUID();
      await tx.query(sql.insertShipped, [shipmentId, order.id, shopId, order.userId, order.saleId, input.carrier, input.trackingNumber, now]);
    }
    await tx.query(sql.shipLines, [order.id, wanted, shipmentId]);
    await ctx.orders.markLinesShipped(tx, order.id, wanted);
    const items = pending.filter((l) => wanted.includes(l.sale_item_id)).map((l) => ({ saleItemId: l.sale_item_id, quantity: l.quantity }));
    await emit(tx, [{
      topic: FulfillmentTopics.shipped,
      payload: {
        shipmentId, orderId: order.id, userId: order.userId, carrier: input.carrier, trackingNumber: input.trackingNumber, items,
        completesOrder,
      } satisfies ShipmentShipped,
    }]);
    if (completesOrder) await ctx.orders.markFulfilled(tx, order.id, shipmentId);
    return (await tx.query<ShipmentRow>(sql.shipmentById, [shipmentId]))[0]!;
  });
  return (await loadShipments(db, [row]))[0]!;
}

/** The merchant marks a shipped shipment delivered; marking it again answers it unchanged. */
export async function markDelivered(ctx: FulfillmentContext, merchantId: string, shipmentId: string): Promise<Shipment> {
  const { db, clock, emit } = ctx;
  const shopId = await shopIdOf(ctx, merchantId);
  const row = await db.transaction(async (tx) => {
    const [shipment] = await tx.query<ShipmentRow>(sql.lockShipment, [shipmentId]);
    if (!shipment || shipment.shop_id !== shopId) throw new AppError('not_found', 'No such shipment.');
    if (shipment.status === 'DELIVERED') return shipment;
    if (shipment.status !== 'SHIPPED') throw new AppError('invalid_state', `The shipment is ${shipment.status}; only a SHIPPED one can be delivered.`);
    await tx.query(sql.markDelivered, [shipmentId, clock.now()]);
    await emit(tx, [{
      topic: FulfillmentTopics.delivered,
      payload: { shipmentId, orderId: shipment.order_id, userId: shipment.user_id, carrier: shipment.carrier ?? '', trackingNumber: shipment.tracking_number ?? '' } satisfies ShipmentDelivered,
    }]);
    return (await tx.query<ShipmentRow>(sql.shipmentById, [shipmentId]))[0]!;
  });
  return (await loadShipments(db, [row]))[0]!;
}
