import { randomUUID } from 'node:crypto';
import type { Clock } from '../platform/clock.ts';
import type { Database, Queryable, Tx } from '../platform/database/index.ts';
import { writeEvents, type OutgoingEvent } from '../platform/broker/outbox.ts';
import { AppError } from '../platform/errors.ts';
import { GroupCommitter, type BatchOutcome, type GroupCommitOptions } from '../platform/group-commit.ts';
import type { IdempotencyClaim, IdempotencyStore } from '../platform/idempotency.ts';
import type { Catalog, FlashSale } from '../catalog/index.ts';
import type { Hold, Inventory, ReserveRequest } from '../inventory/index.ts';
import type { Message, Subscriber } from '../platform/broker/broker.ts';
import type { Logger } from '../platform/logger.ts';
import { OrderTopics, type OrderCancelled, type OrderCreated, type OrderDeadline, type OrderExpired, type OrderPaid, type OrderRefundRequested } from './contracts.ts';
import * as sql from './sql.ts';

export type OrderStatus = 'PENDING_PAYMENT' | 'PAID' | 'FULFILLED' | 'CANCELLED' | 'EXPIRED';

export interface OrderItem {
  saleItemId: string;
  productId: string;
  holdId: string;
  quantity: number;
  unitPrice: number;
}

export interface Order {
  id: string;
  userId: string;
  saleId: string;
  status: OrderStatus;
  totalAmount: number;
  currency: string;
  createdAt: Date;
  expiresAt: Date;
  updatedAt: Date;
  closedReason: string | null;
  items: OrderItem[];
}

export interface CartItem {
  holdId: string;
  saleId: string;
  saleItemId: string;
  productId: string;
  quantity: number;
  unitPrice: number;
  currency: string;
  expiresAt: Date;
}

export interface LineInput {
  saleItemId: string;
  quantity: number;
}

/** A purchase attempt waiting in the group-commit queue, already admitted by the gate. */
interface Attempt {
  kind: 'order' | 'cart';
  userId: string;
  sale: FlashSale;
  lines: Array<LineInput & { productId: string; unitPrice: number }>;
  id: string;
  expiresAt: Date;
  idempotency: IdempotencyClaim | undefined;
}

type AttemptResult = { kind: 'order'; order: Order } | { kind: 'cart'; items: CartItem[] };

export interface OrdersDeps {
  db: Database;
  clock: Clock;
  catalog: Catalog;
  inventory: Inventory;
  idempotency: IdempotencyStore;
  groupCommit: GroupCommitOptions;
  onEventsWritten?: () => void;
  /**
   * Asks the payment side whether an order was paid, before closing it; 'unpaid' promises that it
   * can no longer be paid (the provider's intent is cancelled). Injected, so order never imports payment.
   */
  settlePayment: (orderId: string) => Promise<'paid' | 'unpaid'>;
  /**
   * Whether, in the closing transaction, a payment is open (recorded, not settled): one started
   * after `settlePayment` answered. Injected like `settlePayment`.
   */
  paymentOpen: (tx: Tx, orderId: string) => Promise<boolean>;
  /** Seconds after the payment window for the second close check. */
  graceS: number;
  log: Logger;
  /** Told after each group commit: attempts in the batch and units held (metrics). */
  onBatchCommitted?: (attempts: number, unitsHeld: number) => void;
}

/**
 * Orders and carts. Purchase attempts pass the gate, then wait a few milliseconds to be written
 * with others in one transaction (holds, orders, events, idempotency keys); the caller's promise
 * resolves only after that commit.
 */
export function createOrders(deps: OrdersDeps) {
  const { db, clock, catalog, inventory, idempotency, onEventsWritten } = deps;
  const committer = new GroupCommitter<Attempt, AttemptResult>(commitAttempts, deps.groupCommit);

  async function emit(tx: Tx, events: OutgoingEvent[]): Promise<void> {
    await writeEvents(tx, clock, events);
    if (onEventsWritten) tx.afterCommit(onEventsWritten);
  }

  /** Resolves the lines against the warm catalog: one sale, known items, the right hold mode, open now. */
  async function prepare(userId: string, kind: 'order' | 'cart', input: readonly LineInput[]): Promise<Attempt> {
    const merged = new Map<string, number>();
    // UUIDs are case-insensitive on the wire; the warm catalog is keyed by the canonical lower case.
    for (const line of input) merged.set(line.saleItemId.toLowerCase(), (merged.get(line.saleItemId.toLowerCase()) ?? 0) + line.quantity);
    let sale: FlashSale | undefined;
    const known = await Promise.all([...merged.keys()].map((id) => catalog.findSaleItem(id)));
    const lines = [...merged].map(([saleItemId, quantity], i) => {
      const item = known[i];
      if (!item) throw new AppError('unknown_item', `Sale item ${saleItemId} does not exist.`);
      const itemSale = catalog.getFlashSale(item.saleId)!;
      if (sale && sale.id !== itemSale.id) throw new AppError('validation_failed', 'All items of an order must belong to one sale.');
      sale = itemSale;
      return { saleItemId, quantity, productId: item.productId, unitPrice: item.flashPrice };
    });
    if (!sale) throw new AppError('validation_failed', 'At least one item is required.');
    if (sale.holdMode !== kind) {
      throw new AppError('hold_mode_mismatch', kind === 'cart' ? 'This sale holds stock on order: use POST /v1/orders.' : 'This sale holds stock in the cart: add to cart, then check out.');
    }
    if (catalog.statusOf(sale) !== 'active') throw new AppError('sale_not_active');
    const expiresAt = new Date(clock.now().getTime() + sale.paymentWindowS * 1000);
    return { kind, userId, sale, lines, id: randomUUID(), expiresAt, idempotency: undefined };
  }

  let attemptsInFlight = 0;

  /** Gate, then group commit. Refusals come back as AppErrors with the gate's reason. */
  async function attempt(a: Attempt): Promise<AttemptResult> {
    attemptsInFlight++;
    try {
      return await admitAndCommit(a);
    } finally {
      attemptsInFlight--;
    }
  }

  async function admitAndCommit(a: Attempt): Promise<AttemptResult> {
    const gateLines = a.lines.map((l) => ({ saleItemId: l.saleItemId, quantity: l.quantity }));
    const admission = await inventory.admit(a.userId, gateLines);
    if (!admission.ok) throw new AppError(admission.reason);
    let committed: Promise<AttemptResult>;
    try {
      committed = committer.submit(a);
    } catch (notQueued) {
      await inventory.undoAdmission(a.userId, gateLines);
      throw notQueued;
    }
    return committed;
  }

  async function commitAttempts(attempts: readonly Attempt[]): Promise<Array<BatchOutcome<AttemptResult>>> {
    let outcomes: Array<BatchOutcome<AttemptResult>>;
    try {
      outcomes = await db.transaction((tx) => writeAttempts(tx, attempts));
      const units = attempts.reduce((sum, a, i) => sum + (outcomes[i]!.ok ? a.lines.reduce((n, l) => n + l.quantity, 0) : 0), 0);
      deps.onBatchCommitted?.(attempts.length, units);
    } catch (error) {
      outcomes = attempts.map(() => ({ ok: false, error: new AppError('unavailable', 'Could not save the order; retry.', { retryAfterS: 1, cause: error }) }));
    }
    // An undo that fails (gate unreachable) must not turn committed winners into errors: the gate
    // just stays more conservative than the database until its next rebuild.
    await Promise.all(attempts.map((a, i) => (outcomes[i]!.ok ? undefined : inventory.undoAdmission(a.userId, a.lines).catch((error: unknown) => {
      deps.log.warn({ err: error, userId: a.userId }, 'could not give an admission back to the gate');
    }))));
    return outcomes;
  }

  async function writeAttempts(tx: Tx, attempts: readonly Attempt[]): Promise<Array<BatchOutcome<AttemptResult>>> {
    const outcomes: Array<BatchOutcome<AttemptResult> | undefined> = attempts.map(() => undefined);
    const claimed = await idempotency.claim(tx, attempts.map((a) => a.idempotency));
    const live: number[] = [];
    attempts.forEach((a, i) => {
      if (claimed[i]) live.push(i);
      else outcomes[i] = { ok: false, error: new AppError('idempotency_in_progress') };
    });
    const reserveRequests: ReserveRequest[] = live.map((i) => {
      const a = attempts[i]!;
      return { userId: a.userId, lines: a.lines, kind: a.kind, orderId: a.kind === 'order' ? a.id : null, expiresAt: a.expiresAt };
    });
    const reserved = await inventory.reserve(tx, reserveRequests);
    const orders: Order[] = [];
    const responses: Array<{ claim: IdempotencyClaim; status: number; body: unknown }> = [];
    const unclaim: IdempotencyClaim[] = [];
    live.forEach((attemptIndex, k) => {
      const a = attempts[attemptIndex]!;
      const result = reserved[k]!;
      if (!result.ok) {
        outcomes[attemptIndex] = { ok: false, error: new AppError(result.reason) };
        if (a.idempotency) unclaim.push(a.idempotency);
        return;
      }
      const value: AttemptResult = a.kind === 'order' ? { kind: 'order', order: toNewOrder(a, result.holds) } : { kind: 'cart', items: toCartItems(a, result.holds) };
      if (value.kind === 'order') orders.push(value.order);
      outcomes[attemptIndex] = { ok: true, value };
      if (a.idempotency) responses.push({ claim: a.idempotency, status: 201, body: value.kind === 'order' ? value.order : value.items[0] });
    });
    await insertOrders(tx, orders);
    await idempotency.complete(tx, responses);
    await idempotency.release(tx, unclaim);
    return outcomes as Array<BatchOutcome<AttemptResult>>;
  }

  async function insertOrders(tx: Tx, orders: readonly Order[]): Promise<void> {
    if (orders.length === 0) return;
    await tx.query(sql.insertOrders, [
      orders.map((o) => o.id), orders.map((o) => o.userId), orders.map((o) => o.saleId), orders.map((o) => o.totalAmount),
      orders.map((o) => o.currency), orders.map((o) => o.expiresAt.toISOString()), clock.now(),
    ]);
    const items = orders.flatMap((o) => o.items.map((i) => ({ ...i, orderId: o.id })));
    await tx.query(sql.insertOrderItems, [
      items.map((i) => i.orderId), items.map((i) => i.saleItemId), items.map((i) => i.holdId), items.map((i) => i.productId),
      items.map((i) => i.quantity), items.map((i) => i.unitPrice),
    ]);
    const now = clock.now().getTime();
    await emit(tx, orders.flatMap((o): OutgoingEvent[] => {
      const untilDeadline = Math.max(0, o.expiresAt.getTime() - now);
      return [
        { topic: OrderTopics.created, payload: orderCreatedEvent(o) },
        { topic: OrderTopics.deadline, payload: { orderId: o.id, check: 'close' } satisfies OrderDeadline, delayMs: untilDeadline },
        { topic: OrderTopics.deadline, payload: { orderId: o.id, check: 'recovery' } satisfies OrderDeadline, delayMs: untilDeadline + deps.graceS * 1000 },
      ];
    }));
  }

  /**
   * The close check (brief §5): an unpaid order past its deadline is asked about at the provider
   * first, and only expired — stock released — if it was not paid. Idempotent; safe to run from
   * the deadline message, the second check and the sweeper at once.
   */
  async function closeIfUnpaid(orderId: string): Promise<'not_pending' | 'not_due' | 'paid' | 'expired'> {
    const [row] = await db.query<OrderRow>(sql.orderById, [orderId]);
    if (!row || row.status !== 'PENDING_PAYMENT') return 'not_pending';
    if (clock.now() < row.expires_at) return 'not_due';
    const expired = await closeUnpaid(orderId, async (tx) => {
      const [closed] = await tx.query<{ user_id: string }>(sql.markExpired, [orderId, clock.now()]);
      if (!closed) return false;
      await inventory.releaseOrder(tx, orderId, 'expired');
      await emit(tx, [{ topic: OrderTopics.expired, payload: { orderId, userId: closed.user_id } satisfies OrderExpired }]);
      return true;
    });
    return expired === 'paid' ? 'paid' : expired ? 'expired' : 'not_pending';
  }

  /**
   * Closes a pending order as unpaid (expiry, a buyer's or an admin's cancel): asks the payment side
   * first — 'paid' if the provider took the money, else its intent is cancelled and can no longer
   * be paid — then runs `close` in a transaction. A payment recorded after settlePayment looked (it
   * found none) could still be paid, and nothing would notice that capture: the order's row lock
   * taken by `close` orders us after payOrder's lock (lockPendingForPayment), so if a payment is in,
   * the transaction is rolled back and the close starts over (once) to settle it.
   */
  async function closeUnpaid<T>(orderId: string, close: (tx: Tx) => Promise<T>): Promise<T | 'paid'> {
    for (let attempt = 1; ; attempt++) {
      if ((await deps.settlePayment(orderId)) === 'paid') return 'paid';
      const outcome = await db.transaction(async (tx) => {
        const result = await close(tx);
        if (await deps.paymentOpen(tx, orderId)) throw new PaymentStartedWhileClosing(orderId);
        return result;
      }).catch((error: unknown) => {
        if (error instanceof PaymentStartedWhileClosing && attempt < 3) return error;
        throw error;
      });
      if (!(outcome instanceof PaymentStartedWhileClosing)) return outcome;
    }
  }

  /** payment.succeeded: the order becomes PAID and its units sold; a payment for a closed order is sent back. */
  async function onPaymentSucceeded(tx: Tx, message: Message<{ orderId: string; paymentId: string }>): Promise<void> {
    const { orderId, paymentId } = message.payload;
    const [paid] = await tx.query<{ user_id: string }>(sql.markPaid, [orderId, clock.now()]);
    if (paid) {
      await inventory.commitOrder(tx, orderId);
      await emit(tx, [{ topic: OrderTopics.paid, payload: { orderId, userId: paid.user_id, paymentId } satisfies OrderPaid }]);
      return;
    }
    const [row] = await tx.query<OrderRow>(sql.orderById, [orderId]);
    if (row && row.status === 'PAID') return;
    await emit(tx, [{ topic: OrderTopics.refundRequested, payload: { orderId, userId: row?.user_id ?? '', reason: 'order_closed' } satisfies OrderRefundRequested }]);
  }

  let sweepTimer: NodeJS.Timeout | undefined;

  /**
   * Closes what the deadline messages missed: overdue orders (past window + grace) and expired cart
   * holds. It also looks at the gate: a shared gate whose data was lost is otherwise only noticed
   * by the next buyer's admission, and after a sell-out there may be none (releases go to a gate
   * that is not there); asking starts the rebuild.
   */
  async function sweep(): Promise<{ ordersClosed: number; cartHoldsReleased: number }> {
    await inventory.gateReady();
    const overdue = await db.query<{ id: string }>(sql.overdueOrders, [new Date(clock.now().getTime() - deps.graceS * 1000), 200]);
    let ordersClosed = 0;
    for (const { id } of overdue) {
      try {
        if ((await closeIfUnpaid(id)) === 'expired') ordersClosed++;
      } catch (error) {
        deps.log.warn({ err: error, orderId: id }, 'sweeper could not close an order; will retry');
      }
    }
    const cart = await inventory.expiredCartHolds(500);
    const released = cart.length > 0 ? await db.transaction((tx) => inventory.releaseHolds(tx, cart, 'expired')) : [];
    return { ordersClosed, cartHoldsReleased: released.length };
  }

  function toNewOrder(a: Attempt, holds: Hold[]): Order {
    const now = clock.now();
    const items = a.lines.map((line) => ({
      saleItemId: line.saleItemId, productId: line.productId, quantity: line.quantity, unitPrice: line.unitPrice,
      holdId: holds.find((h) => h.saleItemId === line.saleItemId)!.holdId,
    }));
    return {
      id: a.id, userId: a.userId, saleId: a.sale.id, status: 'PENDING_PAYMENT', currency: a.sale.currency,
      totalAmount: items.reduce((sum, i) => sum + i.unitPrice * i.quantity, 0),
      createdAt: now, expiresAt: a.expiresAt, updatedAt: now, closedReason: null, items,
    };
  }

  function toCartItems(a: Attempt, holds: Hold[]): CartItem[] {
    return a.lines.map((line) => ({
      holdId: holds.find((h) => h.saleItemId === line.saleItemId)!.holdId, saleId: a.sale.id, saleItemId: line.saleItemId,
      productId: line.productId, quantity: line.quantity, unitPrice: line.unitPrice, currency: a.sale.currency, expiresAt: a.expiresAt,
    }));
  }

  async function loadOrders(rows: OrderRow[]): Promise<Order[]> {
    if (rows.length === 0) return [];
    const itemRows = await db.query<ItemRow>(sql.itemsOfOrders, [rows.map((r) => r.id)]);
    return rows.map((r) => toOrder(r, itemRows.filter((i) => i.order_id === r.id)));
  }

  /** A buyer's own order; anyone else's id is indistinguishable from a missing one. */
  async function getOrder(userId: string, orderId: string): Promise<Order> {
    const rows = await db.query<OrderRow>(sql.orderOfUser, [orderId, userId]);
    const [order] = await loadOrders(rows);
    if (!order) throw new AppError('not_found', 'No such order.');
    return order;
  }

  return {
    /** Buyers are being answered (or their purchases committed): background work should give way. */
    buyersWaiting: () => attemptsInFlight > 0 || committer.busy,

    /**
     * The refusal most of a flash sale's requests get, answered before anything else is done for
     * them: an attempt naming an item flagged sold out would be refused by `admit` anyway, and
     * everything in between (per-user limit, catalog, group commit) is work spent on a known answer.
     */
    refuseIfSoldOut(lines: readonly Pick<LineInput, 'saleItemId'>[]): void {
      if (lines.some((line) => inventory.flaggedSoldOut(line.saleItemId))) throw new AppError('sold_out');
    },

    /** Holds stock and creates an order in one step (sales that hold on order). */
    async placeOrder(userId: string, lines: readonly LineInput[], claim?: IdempotencyClaim): Promise<Order> {
      const a = await prepare(userId, 'order', lines);
      a.idempotency = claim;
      const result = await attempt(a);
      if (result.kind !== 'order') throw new Error('unreachable: order attempt produced a cart result');
      return result.order;
    },

    /** Holds stock in the buyer's cart (sales that hold on add-to-cart). The hold's clock starts now. */
    async addCartItem(userId: string, line: LineInput, claim?: IdempotencyClaim): Promise<CartItem> {
      const a = await prepare(userId, 'cart', [line]);
      a.idempotency = claim;
      const result = await attempt(a);
      if (result.kind !== 'cart') throw new Error('unreachable: cart attempt produced an order result');
      return result.items[0]!;
    },

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

    /** Gives a cart hold back to the sale. */
    async removeCartItem(userId: string, holdId: string): Promise<void> {
      await db.transaction(async (tx) => {
        const mine = await inventory.cartHolds(tx, userId, true);
        if (!mine.some((h) => h.holdId === holdId.toLowerCase())) throw new AppError('not_found', 'No such item in your cart.');
        await inventory.releaseHolds(tx, [holdId.toLowerCase()], 'removed_from_cart');
      });
    },

    /** Turns the cart's live holds into orders, one per sale; each hold keeps its original expiry. */
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
            return { saleItemId: h.saleItemId, productId: item.productId, holdId: h.holdId, quantity: h.quantity, unitPrice: item.flashPrice };
          });
          return {
            id: randomUUID(), userId, saleId, status: 'PENDING_PAYMENT', currency: sale.currency,
            totalAmount: items.reduce((sum, i) => sum + i.unitPrice * i.quantity, 0), createdAt: now, updatedAt: now, closedReason: null,
            expiresAt: new Date(Math.min(...saleHolds.map((h) => h.expiresAt.getTime()))), items,
          };
        });
        await insertOrders(tx, orders);
        for (const order of orders) await inventory.attachToOrder(tx, order.items.map((i) => i.holdId), order.id);
        return orders;
      });
    },

    getOrder,

    async listOrders(userId: string, filter: { status?: OrderStatus; limit: number; offset: number }): Promise<Order[]> {
      return loadOrders(await db.query<OrderRow>(sql.ordersOfUser, [userId, filter.status ?? null, filter.limit, filter.offset]));
    },

    /**
     * The buyer cancels a pending order: its stock goes back on sale at once. The provider's intent
     * is cancelled first (a payment that already went through makes the order PAID instead), so no
     * money can arrive for a cancelled order. Cancelling again answers the cancelled order.
     */
    async cancelOrder(userId: string, orderId: string): Promise<Order> {
      const order = await getOrder(userId, orderId);
      if (order.status === 'CANCELLED' && order.closedReason === 'buyer_cancelled') return order;
      if (order.status !== 'PENDING_PAYMENT') throw new AppError('invalid_state', `The order is ${order.status}; only a PENDING_PAYMENT order can be cancelled.`);
      const row = await closeUnpaid(order.id, async (tx) => {
        const [row] = await tx.query<OrderRow>(sql.cancelPending, [order.id, userId, 'buyer_cancelled', clock.now()]);
        if (!row) return undefined;
        await inventory.releaseOrder(tx, order.id, 'cancelled');
        await emit(tx, [{ topic: OrderTopics.cancelled, payload: { orderId: order.id, userId, reason: 'buyer_cancelled' } satisfies OrderCancelled }]);
        return row;
      });
      if (row === 'paid' || !row) {
        const current = await getOrder(userId, order.id);
        if (current.status === 'CANCELLED' && current.closedReason === 'buyer_cancelled') return current;
        throw new AppError('invalid_state', `The order is ${row === 'paid' ? 'PAID' : current.status}; only a PENDING_PAYMENT order can be cancelled.`);
      }
      return (await loadOrders([row]))[0]!;
    },

    /** Every order's holds agree with its status; every order hold belongs to an order. */
    async audit(): Promise<Array<{ check: string; message: string; ids: string[] }>> {
      const violations: Array<{ check: string; message: string; ids: string[] }> = [];
      const orderHolds = await db.query<{ id: string; status: OrderStatus; hold_id: string }>(sql.auditOrders);
      const holds = new Map((await inventory.holdsOfOrders()).map((h) => [h.holdId, h]));
      const expected: Record<OrderStatus, string[]> = { PENDING_PAYMENT: ['held'], PAID: ['sold'], FULFILLED: ['sold'], CANCELLED: ['released', 'written_off'], EXPIRED: ['released'] };
      const seen = new Set<string>();
      for (const row of orderHolds) {
        seen.add(row.hold_id);
        const hold = holds.get(row.hold_id);
        if (!hold) violations.push({ check: 'order_has_holds', message: `order ${row.status} references a missing hold`, ids: [row.id, row.hold_id] });
        else if (!expected[row.status].includes(hold.status)) violations.push({ check: 'hold_matches_order', message: `order is ${row.status} but its hold is ${hold.status}`, ids: [row.id, row.hold_id] });
      }
      const stuck = await db.query<{ id: string }>(sql.overdueOrders, [new Date(clock.now().getTime() - deps.graceS * 1000), 1000]);
      if (stuck.length > 0) violations.push({ check: 'order_reaches_terminal', message: `${stuck.length} orders still pending past their deadline + grace`, ids: stuck.map((o) => o.id) });
      for (const hold of holds.values()) {
        if (!seen.has(hold.holdId)) violations.push({ check: 'hold_order_exists', message: 'hold points at an order that does not exist', ids: [hold.holdId, hold.orderId] });
      }
      return violations;
    },

    closeIfUnpaid,
    sweep,

    /**
     * In the caller's transaction: locks the order against closing (FOR SHARE) if it still awaits
     * payment and its window is open; false otherwise. payOrder records the provider's intent under
     * this lock, so a close either sees the payment or happened before it and refuses it.
     */
    async lockPendingForPayment(tx: Tx, orderId: string): Promise<boolean> {
      return (await tx.query(sql.lockPendingForPayment, [orderId, clock.now()])).length > 0;
    },

    /** An order's status and what it costs (whoever's it is): what a provider's capture must match. */
    async paymentTerms(q: Queryable, orderId: string): Promise<OrderTerms | undefined> {
      const [row] = await q.query<OrderRow>(sql.orderById, [orderId]);
      return row ? { status: row.status, totalAmount: Number(row.total_amount), currency: row.currency } : undefined;
    },

    /** Every order's status and total, for the cross-component audit and the reconciliation. */
    async terms(): Promise<Map<string, OrderTerms>> {
      const rows = await db.query<{ id: string; status: OrderStatus; total_amount: number; currency: string }>('select id, status, total_amount, currency from orders');
      return new Map(rows.map((r) => [r.id, { status: r.status, totalAmount: Number(r.total_amount), currency: r.currency }]));
    },

    /**
     * An admin cancels an order: pending → its intent cancelled at the provider and its units
     * released; paid → refunded, units restocked or written off.
     */
    async adminCancel(orderId: string, restock: boolean): Promise<Order> {
      const [current] = await db.query<OrderRow>(sql.orderById, [orderId]);
      if (!current) throw new AppError('not_found', 'No such order.');
      if (current.status === 'PENDING_PAYMENT') {
        const closed = await closeUnpaid(orderId, async (tx) => {
          const [row] = await tx.query<{ user_id: string }>(sql.markCancelled, [orderId, 'admin_cancelled', clock.now(), 'PENDING_PAYMENT']);
          if (!row) return false;
          await inventory.releaseOrder(tx, orderId, 'cancelled');
          await emit(tx, [{ topic: OrderTopics.cancelled, payload: { orderId, userId: row.user_id, reason: 'admin_cancelled' } satisfies OrderCancelled }]);
          return true;
        });
        if (closed === 'paid') throw new AppError('invalid_state', 'The order was just paid; cancel it again to refund it.');
        if (closed) return getOrder(current.user_id, orderId);
      }
      const row = await db.transaction(async (tx) => {
        const [order] = await tx.query<OrderRow>(sql.lockOrder, [orderId]);
        if (!order) throw new AppError('not_found', 'No such order.');
        if (order.status !== 'PAID') throw new AppError('invalid_state', `The order is ${order.status}.`);
        await tx.query(sql.markCancelled, [orderId, 'admin_cancelled', clock.now(), 'PAID']);
        await inventory.unsellOrder(tx, orderId, restock);
        await emit(tx, [
          { topic: OrderTopics.refundRequested, payload: { orderId, userId: order.user_id, reason: 'admin_cancelled' } satisfies OrderRefundRequested },
          { topic: OrderTopics.cancelled, payload: { orderId, userId: order.user_id, reason: 'admin_cancelled' } satisfies OrderCancelled },
        ]);
        return order;
      });
      return getOrder(row.user_id, orderId);
    },

    /** Order's consumers: payment results, and its own deadline messages. */
    subscribe(broker: Subscriber): void {
      broker.consume('order-payments', ['payment.succeeded'], (tx, m) => onPaymentSucceeded(tx, m as Message<{ orderId: string; paymentId: string }>));
      broker.consumeSelfManaged('order-deadlines', [OrderTopics.deadline], async (m) => {
        await closeIfUnpaid((m.payload as OrderDeadline).orderId);
      });
    },

    startSweeper(intervalMs: number): void {
      clearInterval(sweepTimer);
      sweepTimer = setInterval(() => void sweep().catch((error: unknown) => deps.log.error({ err: error }, 'sweep failed')), intervalMs);
      sweepTimer.unref();
    },

    /** Commits what is waiting and refuses new attempts (graceful shutdown). */
    async close() {
      clearInterval(sweepTimer);
      await committer.close();
    },
  };
}

export type Orders = ReturnType<typeof createOrders>;

/** Rolls a close back: a payment appeared after the close had asked the provider. */
class PaymentStartedWhileClosing extends Error {
  constructor(orderId: string) {
    super(`order ${orderId}: a payment was started while it was being closed; closing again`);
  }
}

function orderCreatedEvent(o: Order): OrderCreated {
  return {
    orderId: o.id, userId: o.userId, saleId: o.saleId, totalAmount: o.totalAmount, currency: o.currency, expiresAt: o.expiresAt.toISOString(),
    items: o.items.map((i) => ({ saleItemId: i.saleItemId, holdId: i.holdId, quantity: i.quantity, unitPrice: i.unitPrice })),
  };
}

/** What a payment must match: an order's status and what it costs (payment and the audit read it). */
export interface OrderTerms { status: OrderStatus; totalAmount: number; currency: string }

interface OrderRow { id: string; user_id: string; sale_id: string; status: OrderStatus; total_amount: number; currency: string; created_at: Date; expires_at: Date; updated_at: Date; closed_reason: string | null }
interface ItemRow { order_id: string; sale_item_id: string; hold_id: string; product_id: string; quantity: number; unit_price: number }

function toOrder(r: OrderRow, items: ItemRow[]): Order {
  return {
    id: r.id, userId: r.user_id, saleId: r.sale_id, status: r.status, totalAmount: r.total_amount, currency: r.currency,
    createdAt: r.created_at, expiresAt: r.expires_at, updatedAt: r.updated_at, closedReason: r.closed_reason,
    items: items.map((i) => ({ saleItemId: i.sale_item_id, productId: i.product_id, holdId: i.hold_id, quantity: i.quantity, unitPrice: i.unit_price })),
  };
}
