import type { OrderTerms } from '../order/index.ts';
import type { FulfillmentContext } from './context.ts';
import * as sql from './sql.ts';

export interface FulfillmentViolation { check: string; message: string; ids: string[] }

const paid = (status: string | undefined) => status === 'PAID' || status === 'FULFILLED';

/**
 * Fulfillment's invariants: every paid order has a shipment (once quiet: the order-paid consumer
 * opens it after the payment); no shipment belongs to an order that was never paid; no more units
 * of an item shipped than are sold.
 */
export async function auditFulfillment({ db, inventory }: Pick<FulfillmentContext, 'db' | 'inventory'>, orders: ReadonlyMap<string, OrderTerms>, quiet: boolean): Promise<FulfillmentViolation[]> {
  const violations: FulfillmentViolation[] = [];
  const shipped = new Set((await db.query<{ order_id: string }>(sql.auditShipmentOrders)).map((r) => r.order_id));
  if (quiet) {
    const missing = [...orders].filter(([id, o]) => paid(o.status) && !shipped.has(id)).map(([id]) => id);
    if (missing.length > 0) violations.push({ check: 'paid_order_has_shipment', message: `${missing.length} paid orders have no shipment`, ids: missing });
  }
  // A CANCELLED order may have one: cancelled after it was paid (by an admin, or line by line).
  const unpaid = [...shipped].filter((id) => { const s = orders.get(id)?.status; return s === undefined || s === 'PENDING_PAYMENT' || s === 'EXPIRED'; });
  if (unpaid.length > 0) violations.push({ check: 'shipment_order_paid', message: `${unpaid.length} shipments of orders never paid (or missing)`, ids: unpaid });
  const sold = new Map<string, number>();
  for (const h of await inventory.holdsOfOrders()) if (h.status === 'sold') sold.set(h.saleItemId, (sold.get(h.saleItemId) ?? 0) + h.quantity);
  for (const r of await db.query<{ sale_item_id: string; shipped: number }>(sql.auditShippedUnits)) {
    if (r.shipped > (sold.get(r.sale_item_id) ?? 0)) {
      violations.push({ check: 'shipped_within_sold', message: `${r.shipped} units shipped of an item with ${sold.get(r.sale_item_id) ?? 0} sold`, ids: [r.sale_item_id] });
    }
  }
  return violations;
}
