import type { Clock } from '../platform/clock.ts';
import { countBy, type Database } from '../platform/database/index.ts';
import type { Emit } from '../platform/broker/outbox.ts';
import type { GroupCommitOptions } from '../platform/group-commit.ts';
import type { IdempotencyClaim, IdempotencyStore } from '../platform/idempotency.ts';
import type { Subscriber } from '../platform/broker/broker.ts';
import { readPayload } from '../platform/broker/event-contract.ts';
import { PaymentSucceeded, PaymentTopics } from '../payment/contracts.ts';
import type { Logger } from '../platform/logger.ts';
import type { Catalog } from '../catalog/index.ts';
import type { Inventory } from '../inventory/index.ts';
import { OrderDeadline, OrderTopics } from './contracts.ts';
import type { OrderContext } from './context.ts';
import type { CartItem, LineInput, Order, SaleSummary } from './model.ts';
import * as sql from './sql.ts';
import { createOrderRecords, type OrderRecords } from './records.ts';
import { createPurchase } from './purchase.ts';
import { createCart } from './cart.ts';
import { createClosing } from './closing.ts';
import { createCancel } from './cancel.ts';
import { applyPayment } from './paid.ts';
import { auditOrders, type OrderViolation } from './audit.ts';
import { closeOrdersOfSale } from './sale-cancelled.ts';
import { CatalogTopics, SaleCancelled } from '../catalog/contracts.ts';
import { createAfterPayment, type CancelledLines } from './after-payment.ts';
import { listSaleOrders, type SaleOrdersFilter, type SaleOrdersPage } from './shop-orders.ts';
import type { Tx } from '../platform/database/index.ts';

export type { CartItem, LineInput, Order, OrderItem, OrderStatus, OrderTerms, SaleSummary } from './model.ts';
export { CartItemSchema, ORDER_STATUSES, OrderSchema, OrderStatusSchema, orderVersion } from './model.ts';
export type { PaymentSettlement } from './context.ts';
export type { CancelledLines } from './after-payment.ts';
export type { SaleOrdersFilter, SaleOrdersPage, SaleOrdersTotal } from './shop-orders.ts';
export { createOrderRecords, type OrderRecords } from './records.ts';

/** Orders and carts: buying, paying's consequences, closing, cancelling — the order component's whole surface. */
export interface Orders extends OrderRecords {
  /** Buyers are being answered (or their purchases committed): background work should give way. */
  buyersWaiting(): boolean;
  /**
   * The refusal most of a flash sale's requests get, answered before anything else is done for
   * them: an attempt naming an item flagged sold out would be refused by the gate anyway.
   */
  anySoldOut(lines: readonly Pick<LineInput, 'saleItemId'>[]): boolean;
  /** Holds stock and creates an order in one step (sales that hold on order); resolves after the commit. */
  placeOrder(userId: string, lines: readonly LineInput[], claim?: IdempotencyClaim): Promise<Order>;
  /** Holds stock in the buyer's cart (sales that hold on add-to-cart); the hold's clock starts now. */
  addCartItem(userId: string, line: LineInput, claim?: IdempotencyClaim): Promise<CartItem>;
  /** The buyer's live cart holds, oldest first. */
  getCart(userId: string): Promise<CartItem[]>;
  /** Gives a cart hold back to the sale. */
  removeCartItem(userId: string, holdId: string): Promise<void>;
  /** Turns the cart's live holds into orders, one per sale; each keeps its holds' earliest expiry. */
  checkout(userId: string): Promise<Order[]>;
  /** The buyer cancels a pending order (the provider's intent first); cancelling again answers the cancelled order. */
  cancelOrder(userId: string, orderId: string): Promise<Order>;
  /** An admin cancels any order: pending → released; paid → refunded, units restocked or written off. */
  adminCancel(orderId: string, restock: boolean): Promise<Order>;
  /** The close check: expires an unpaid order past its deadline, after asking the provider. */
  closeIfUnpaid(orderId: string): Promise<'not_pending' | 'not_due' | 'paid' | 'expired'>;
  /** Closes overdue orders and expired cart holds whose deadline messages were lost. */
  sweep(): Promise<{ ordersClosed: number; cartHoldsReleased: number }>;
  startSweeper(intervalMs: number): void;
  /** The orders of these sales still awaiting payment (the audit: a cancelled sale leaves none once quiet). */
  pendingOfSales(saleIds: readonly string[]): Promise<string[]>;
  /** A sale's orders by outcome, units sold and revenue (the merchant's end-of-sale notice). */
  saleSummary(saleId: string): Promise<SaleSummary>;
  /** In the caller's transaction: the order, locked FOR UPDATE (fulfillment serializes its changes on it). */
  lockOrder(tx: Tx, orderId: string): Promise<Order | undefined>;
  /**
   * In the caller's transaction: the merchant cancels lines of a PAID order — each refunded
   * (`order.line_cancelled`), its units restocked or written off; no line left makes the order CANCELLED.
   */
  cancelLines(tx: Tx, orderId: string, saleItemIds: readonly string[], restock: boolean): Promise<CancelledLines>;
  /** In the caller's transaction: PAID → FULFILLED (every line not cancelled has shipped); false if it was not PAID. */
  markFulfilled(tx: Tx, orderId: string, byShipmentId?: string): Promise<boolean>;
  /** In the caller's transaction: these lines have shipped; an order with a shipped line is not cancelled whole (`order_shipped`). */
  markLinesShipped(tx: Tx, orderId: string, saleItemIds: readonly string[]): Promise<void>;
  /** The orders of a merchant's sales, filtered and paged, with totals over every page. */
  listSaleOrders(filter: SaleOrdersFilter): Promise<SaleOrdersPage>;
  /** The order invariants of the audit. */
  audit(): Promise<OrderViolation[]>;
  /** Orders per status (metrics; one grouped count). */
  countByStatus(): Promise<Record<string, number>>;
  /** Order's consumers: payment results, its own deadline messages, and cancelled sales (their pending orders closed). */
  subscribe(broker: Subscriber): void;
  /** Commits what is waiting and refuses new attempts (graceful shutdown). */
  close(): Promise<void>;
}

/** What the order use cases share (context.ts), plus the group commit's settings. */
export interface OrdersDeps extends OrderContext {
  groupCommit: GroupCommitOptions;
  /** Told after each group commit: attempts in the batch and units held (metrics). */
  onBatchCommitted?: (attempts: number, unitsHeld: number) => void;
  /** Told when the database's double check refuses an attempt the gate admitted (metrics: the oversold guard). */
  onDatabaseRefusal?: (reason: string) => void;
}

/** Wires the order use cases (one file each) over one shared context. */
export function createOrders(deps: OrdersDeps): Orders {
  const ctx = { ...deps };
  const records = createOrderRecords(deps);
  const purchase = createPurchase(ctx, { groupCommit: deps.groupCommit, onBatchCommitted: deps.onBatchCommitted, onDatabaseRefusal: deps.onDatabaseRefusal });
  const closing = createClosing(ctx);
  const afterPayment = createAfterPayment(ctx);
  return {
    ...records,
    ...createCart(ctx),
    ...createCancel(ctx, records),
    buyersWaiting: purchase.buyersWaiting,
    anySoldOut: purchase.anySoldOut,
    placeOrder: purchase.placeOrder,
    addCartItem: purchase.addCartItem,
    closeIfUnpaid: closing.closeIfUnpaid,
    sweep: closing.sweep,
    startSweeper: closing.startSweeper,
    async pendingOfSales(saleIds) {
      if (saleIds.length === 0) return [];
      return (await deps.db.query<{ id: string }>(sql.pendingOfSales, [saleIds])).map((r) => r.id);
    },
    async saleSummary(saleId) {
      const [counts] = await deps.db.query<Omit<SaleSummary, 'unitsSold'>>(sql.saleSummary, [saleId]);
      const [lines] = await deps.db.query<{ units: number; revenue: number }>(sql.unitsSoldOfSale, [saleId]);
      return { ...counts!, revenue: Number(lines!.revenue), unitsSold: lines!.units };
    },
    lockOrder: afterPayment.lockOrder,
    cancelLines: afterPayment.cancelLines,
    markFulfilled: afterPayment.markFulfilled,
    markLinesShipped: afterPayment.markLinesShipped,
    listSaleOrders: (filter) => listSaleOrders(deps.db, filter),
    audit: () => auditOrders(ctx),
    countByStatus: () => countBy(ctx.db, 'select status as key, count(*) as n from orders group by status'),
    subscribe(broker) {
      broker.consume('order-payments', [PaymentTopics.succeeded], (tx, m) => applyPayment(ctx, tx, readPayload(PaymentSucceeded, m)));
      broker.consumeSelfManaged('order-deadlines', [OrderTopics.deadline], async (m) => {
        await closing.closeIfUnpaid(readPayload(OrderDeadline, m).orderId);
      });
      broker.consumeSelfManaged('order-sale-cancellations', [CatalogTopics.cancelled], async (m) => {
        const { saleId, cancelledAt } = readPayload(SaleCancelled, m);
        await closeOrdersOfSale(ctx, saleId, new Date(cancelledAt));
      });
    },
    async close() {
      closing.stopSweeper();
      await purchase.close();
    },
  };
}
