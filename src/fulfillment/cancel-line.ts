import { AppError } from '../platform/errors.ts';
import type { Order } from '../order/index.ts';
import { shopIdOf, type FulfillmentContext } from './context.ts';
import { fulfilIfDone, lockMerchantOrder } from './ship.ts';
import * as sql from './sql.ts';

/**
 * The merchant cancels a line it cannot ship: order refunds the line's amount through the provider
 * (`order.line_cancelled` → payment, a refund in part), its units go back on sale (`restock`) or are
 * written off. The last line cancelled cancels the order; the last pending one, with others
 * shipped, fulfils it.
 */
export async function cancelOrderLine(ctx: FulfillmentContext, merchantId: string, orderId: string, saleItemId: string, restock: boolean): Promise<Order> {
  const shopId = await shopIdOf(ctx, merchantId);
  return ctx.db.transaction(async (tx) => {
    const { lines } = await lockMerchantOrder(ctx, tx, shopId, orderId);
    const line = lines.find((l) => l.sale_item_id === saleItemId);
    if (!line) throw new AppError('not_found', 'No such line in this order.');
    if (line.status !== 'PENDING') throw new AppError('invalid_state', `The line is ${line.status}; only a line not yet shipped can be cancelled.`);
    const { order } = await ctx.orders.cancelLines(tx, orderId, [saleItemId], restock);
    await tx.query(sql.cancelLines, [orderId, [saleItemId], restock]);
    await tx.query(sql.closeEmptyShipment, [orderId, ctx.clock.now()]);
    if (order.status === 'PAID') {
      await fulfilIfDone(ctx, tx, orderId);
      return (await ctx.orders.lockOrder(tx, orderId))!;
    }
    return order;
  });
}
