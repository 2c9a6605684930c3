import { randomUUID } from 'node:crypto';
import { AppError } from '../platform/errors.ts';
import type { OrderContext } from './context.ts';
import type { CartItem, Order } from './model.ts';
import { writeNewOrders } from './new-orders.ts';

/** The cart of a cart-hold sale: holds taken on add (by the purchase), listed, given back, checked out into orders. */
export function createCart(ctx: OrderContext) {
  const { db, clock, catalog, inventory } = ctx;

  return {
    async getCart(userId: string): Promise<CartItem[]> {
      const holds = await inventory.cartHolds(db, userId);
      await Promise.all(holds.map((h) => catalog.findSaleItem(h.saleItemId)));
      return holds.flatMap((h) => {
        const item = catalog.getSaleItem(h.saleItemId);
        const sale = item && catalog.getFlashSale(item.saleId);
        if (!item || !sale) return [];
        return [{ holdId: h.holdId, saleId: sale.id, saleItemId: item.id, productId: item.productId, quantity: h.quantity, unitPrice: item.flashPrice, currency: sale.currency, expiresAt: h.expiresAt }];
      });
    },

    async removeCartItem(userId: string, holdId: string): Promise<void> {
      await db.transaction(async (tx) => {
        const mine = await inventory.cartHolds(tx, userId, true);
        if (!mine.some((h) => h.holdId === holdId.toLowerCase())) throw new AppError('not_found', 'No such item in your cart.');
        await inventory.releaseHolds(tx, [holdId.toLowerCase()], 'removed_from_cart');
      });
    },

    /** One order per sale; each order's deadline is the earliest expiry of its holds (checkout never extends it). */
    async checkout(userId: string): Promise<Order[]> {
      // Warm the catalog first: inside the transaction only the transaction may touch the database.
      for (const h of await inventory.cartHolds(db, userId)) await catalog.findSaleItem(h.saleItemId);
      return db.transaction(async (tx) => {
        const now = clock.now();
        const holds = (await inventory.cartHolds(tx, userId, true)).filter((h) => h.expiresAt > now && catalog.getSaleItem(h.saleItemId));
        if (holds.length === 0) throw new AppError('cart_empty');
        const bySale = new Map<string, typeof holds>();
        for (const h of holds) {
          const saleId = catalog.getSaleItem(h.saleItemId)!.saleId;
          bySale.set(saleId, [...(bySale.get(saleId) ?? []), h]);
        }
        const orders: Order[] = [...bySale].map(([saleId, saleHolds]) => {
          const sale = catalog.getFlashSale(saleId)!;
          const items = saleHolds.map((h) => {
            const item = catalog.getSaleItem(h.saleItemId)!;
            return { saleItemId: h.saleItemId, productId: item.productId, holdId: h.holdId, quantity: h.quantity, unitPrice: item.flashPrice, cancelledAt: null };
          });
          return {
            id: randomUUID(), userId, saleId, status: 'PENDING_PAYMENT', currency: sale.currency,
            totalAmount: items.reduce((sum, i) => sum + i.unitPrice * i.quantity, 0), createdAt: now, updatedAt: now, closedReason: null,
            expiresAt: new Date(Math.min(...saleHolds.map((h) => h.expiresAt.getTime()))), items,
          };
        });
        await writeNewOrders(ctx, tx, orders);
        for (const order of orders) await inventory.attachToOrder(tx, order.items.map((i) => i.holdId), order.id);
        return orders;
      });
    },
  };
}
