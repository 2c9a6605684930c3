import type { Subscriber } from '../platform/broker/broker.ts';
import { readPayload } from '../platform/broker/event-contract.ts';
import { OrderCancelled, OrderPaid, OrderTopics } from '../order/contracts.ts';
import type { Order, OrderTerms, SaleOrdersPage } from '../order/index.ts';
import type { Shipment } from './contracts.ts';
import { loadShipments, type FulfillmentContext, type ShipmentRow } from './context.ts';
import { onOrderCancelled, onOrderPaid } from './open.ts';
import { createShipment, markDelivered, type NewShipment } from './ship.ts';
import { cancelOrderLine } from './cancel-line.ts';
import { exportShopOrders, listShopOrders, type ShopOrdersFilter } from './shop-orders.ts';
import { auditFulfillment, type FulfillmentViolation } from './audit.ts';
import * as sql from './sql.ts';

export type { Shipment, ShipmentStatus } from './contracts.ts';
export { ShipmentSchema, SHIPMENT_STATUSES } from './contracts.ts';
export type { NewShipment } from './ship.ts';
export type { ShopOrdersFilter } from './shop-orders.ts';
export { EXPORT_MAX_ORDERS } from './shop-orders.ts';

/**
 * Fulfillment: what happens to a paid order — its shipment opened by the order-paid consumer, its
 * lines shipped (in parts if need be) and delivered, a line the merchant cannot ship cancelled and
 * refunded; and the merchant's view of its orders. Only the merchant whose shop sold the order acts.
 */
export interface Fulfillment {
  /** The merchant ships lines of a paid order (all still pending by default) with a carrier and tracking number. */
  createShipment(merchantId: string, orderId: string, input: NewShipment): Promise<Shipment>;
  /** The merchant marks a shipped shipment delivered (again: answered unchanged). */
  markDelivered(merchantId: string, shipmentId: string): Promise<Shipment>;
  /** The merchant cancels a line not yet shipped: refunded in part, units restocked or written off. */
  cancelOrderLine(merchantId: string, orderId: string, saleItemId: string, restock: boolean): Promise<Order>;
  /** The shipments of an order, oldest first (the buyer's tracking; the caller checks whose order it is). */
  shipmentsOf(orderId: string): Promise<Shipment[]>;
  /** The merchant's orders, filtered and paged, with totals. */
  listShopOrders(merchantId: string, filter: ShopOrdersFilter & { limit: number; offset: number }): Promise<SaleOrdersPage>;
  /** The merchant's orders as CSV, one row per line. */
  exportShopOrders(merchantId: string, filter: ShopOrdersFilter): Promise<string>;
  /** Fulfillment's invariants, given every order's status. */
  audit(orders: ReadonlyMap<string, OrderTerms>, quiet: boolean): Promise<FulfillmentViolation[]>;
  /** Fulfillment's consumer: a paid order's shipment is opened; a cancelled one's pending lines cancelled. */
  subscribe(broker: Subscriber): void;
}

export type FulfillmentDeps = FulfillmentContext;

/** Wires the fulfillment use cases (one file each) over one shared context. */
export function createFulfillment(deps: FulfillmentDeps): Fulfillment {
  const ctx: FulfillmentContext = { ...deps };
  return {
    createShipment: (merchantId, orderId, input) => createShipment(ctx, merchantId, orderId, input),
    markDelivered: (merchantId, shipmentId) => markDelivered(ctx, merchantId, shipmentId),
    cancelOrderLine: (merchantId, orderId, saleItemId, restock) => cancelOrderLine(ctx, merchantId, orderId, saleItemId, restock),
    shipmentsOf: async (orderId) => loadShipments(ctx.db, await ctx.db.query<ShipmentRow>(sql.shipmentsOfOrders, [[orderId]])),
    listShopOrders: (merchantId, filter) => listShopOrders(ctx, merchantId, filter),
    exportShopOrders: (merchantId, filter) => exportShopOrders(ctx, merchantId, filter),
    audit: (orders, quiet) => auditFulfillment(ctx, orders, quiet),
    subscribe(broker) {
      broker.consume('fulfillment-shipments', [OrderTopics.paid, OrderTopics.cancelled], async (tx, m) => {
        if (m.topic === OrderTopics.paid) await onOrderPaid(ctx, tx, readPayload(OrderPaid, m));
        else await onOrderCancelled(ctx, tx, readPayload(OrderCancelled, m));
      });
    },
  };
}
