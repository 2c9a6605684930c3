import type { OrderContext } from './context.ts';
import type { OrderStatus } from './model.ts';
import * as sql from './sql.ts';

export interface OrderViolation { check: string; message: string; ids: string[] }

/** The hold each order status must have: a paid order's units are sold, a closed one's given back. */
const HOLD_OF: Record<OrderStatus, readonly string[]> = { PENDING_PAYMENT: ['held'], PAID: ['sold'], FULFILLED: ['sold'], CANCELLED: ['released', 'written_off'], EXPIRED: ['released'] };

/** A line the merchant cancelled after payment gave its units back or wrote them off, whatever the order's status. */
const CANCELLED_LINE = ['released', 'written_off'];

/** Every order's holds agree with its status; every order hold belongs to an order; no order stays pending past deadline + grace. */
export async function auditOrders({ db, clock, inventory, graceS }: OrderContext): Promise<OrderViolation[]> {
  const violations: OrderViolation[] = [];
  const orderHolds = await db.query<{ id: string; status: OrderStatus; hold_id: string; cancelled: boolean }>(sql.auditOrders);
  const holds = new Map((await inventory.holdsOfOrders()).map((h) => [h.holdId, h]));
  const seen = new Set<string>();
  for (const row of orderHolds) {
    seen.add(row.hold_id);
    const hold = holds.get(row.hold_id);
    if (!hold) violations.push({ check: 'order_has_holds', message: `order ${row.status} references a missing hold`, ids: [row.id, row.hold_id] });
    else if (!(row.cancelled ? CANCELLED_LINE : HOLD_OF[row.status]).includes(hold.status)) violations.push({ check: 'hold_matches_order', message: `order is ${row.status} but its hold is ${hold.status}`, ids: [row.id, row.hold_id] });
  }
  const stuck = await db.query<{ id: string }>(sql.overdueOrders, [new Date(clock.now().getTime() - graceS * 1000), 1000]);
  if (stuck.length > 0) violations.push({ check: 'order_reaches_terminal', message: `${stuck.length} orders still pending past their deadline + grace`, ids: stuck.map((o) => o.id) });
  for (const hold of holds.values()) {
    if (!seen.has(hold.holdId)) violations.push({ check: 'hold_order_exists', message: 'hold points at an order that does not exist', ids: [hold.holdId, hold.orderId] });
  }
  return violations;
}
