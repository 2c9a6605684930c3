import type { Queryable, Tx } from '../platform/database/index.ts';
import type { InventoryContext } from './context.ts';
import type { CartHold, OrderHold } from './model.ts';
import * as sql from './sql.ts';

/** The buyer's cart holds; with `lock`, row-locked for a checkout in the caller's transaction. */
export async function cartHolds(q: Queryable, userId: string, lock = false): Promise<CartHold[]> {
  const rows = await q.query<{ id: string; sale_item_id: string; quantity: number; created_at: Date; expires_at: Date }>(
    lock ? sql.lockCartHoldsOfUser : sql.cartHoldsOfUser, [userId]);
  return rows.map((r) => ({ holdId: r.id, saleItemId: r.sale_item_id, quantity: r.quantity, createdAt: r.created_at, expiresAt: r.expires_at }));
}

/** Moves cart holds under an order; their expiry does not change. */
export async function attachToOrder(tx: Tx, holdIds: readonly string[], orderId: string): Promise<number> {
  return (await tx.query(sql.attachHoldsToOrder, [holdIds, orderId])).length;
}

/** Cart holds whose time ran out (the sweeper releases them). */
export async function expiredCartHolds({ db, clock }: InventoryContext, limit: number): Promise<string[]> {
  return (await db.query<{ id: string }>(sql.expiredCartHolds, [clock.now(), limit])).map((r) => r.id);
}

/** Hold status per order, for the cross-component audit. */
export async function holdsOfOrders({ db }: InventoryContext): Promise<OrderHold[]> {
  const rows = await db.query<{ id: string; order_id: string; sale_item_id: string; quantity: number; status: string }>(sql.holdsOfOrders);
  return rows.map((r) => ({ holdId: r.id, orderId: r.order_id, saleItemId: r.sale_item_id, quantity: r.quantity, status: r.status }));
}
