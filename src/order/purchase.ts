import { randomUUID } from 'node:crypto';
import type { Clock } from '../platform/clock.ts';
import type { Tx } from '../platform/database/index.ts';
import { AppError } from '../platform/errors.ts';
import { GroupCommitter, type BatchOutcome, type GroupCommitOptions } from '../platform/group-commit.ts';
import type { IdempotencyClaim } from '../platform/idempotency.ts';
import { tracer, type TraceCarrier } from '../platform/tracing/tracing.ts';
import type { FlashSale } from '../catalog/index.ts';
import type { Hold, ReserveRequest } from '../inventory/index.ts';
import type { OrderContext } from './context.ts';
import type { CartItem, LineInput, Order } from './model.ts';
import { writeNewOrders } from './new-orders.ts';

/** A purchase attempt: resolved against the catalog, then admitted by the gate, then written in a batch. */
interface Attempt {
  kind: 'order' | 'cart';
  userId: string;
  sale: FlashSale;
  lines: Array<LineInput & { productId: string; unitPrice: number }>;
  id: string;
  expiresAt: Date;
  idempotency: IdempotencyClaim | undefined;
  /** The buyer's trace (tracing on): the order and its events continue it. */
  trace?: TraceCarrier | undefined;
}

type AttemptResult = { kind: 'order'; order: Order } | { kind: 'cart'; items: CartItem[] };
type Committer = GroupCommitter<Attempt, AttemptResult>;

export interface PurchaseOptions {
  groupCommit: GroupCommitOptions;
  /** Told after each group commit: attempts in the batch and units held (metrics). */
  onBatchCommitted?: (attempts: number, unitsHeld: number) => void;
  /** Told when the database's double check refuses an attempt the gate admitted (metrics: the oversold guard). */
  onDatabaseRefusal?: (reason: string) => void;
}

/**
 * The purchase, as one story: resolve the lines against the warm catalog → the gate admits (or
 * refuses) at once → the attempt waits a few milliseconds to be written with others in one
 * transaction (idempotency claims, holds, orders, events) → the buyer's answer comes only after
 * that commit. An admission is spent in exactly one place (`admitThenCommit`): a committed
 * reservation, or given back to the gate.
 */
export function createPurchase(ctx: OrderContext, options: PurchaseOptions) {
  const committer: Committer = new GroupCommitter<Attempt, AttemptResult>((batch) => commitBatch(ctx, options, batch), options.groupCommit);
  const inFlight = { count: 0 };
  const attempt = (a: Attempt) => admitThenCommit(ctx, committer, inFlight, a);

  return {
    buyersWaiting: (): boolean => inFlight.count > 0 || committer.busy,

    anySoldOut(lines: readonly Pick<LineInput, 'saleItemId'>[]): boolean {
      return lines.some((line) => ctx.inventory.flaggedSoldOut(line.saleItemId));
    },

    async placeOrder(userId: string, lines: readonly LineInput[], claim?: IdempotencyClaim): Promise<Order> {
      const result = await attempt(await prepare(ctx, userId, 'order', lines, claim));
      if (result.kind !== 'order') throw new Error('unreachable: order attempt produced a cart result');
      return result.order;
    },

    async addCartItem(userId: string, line: LineInput, claim?: IdempotencyClaim): Promise<CartItem> {
      const result = await attempt(await prepare(ctx, userId, 'cart', [line], claim));
      if (result.kind !== 'cart') throw new Error('unreachable: cart attempt produced an order result');
      return result.items[0]!;
    },

    close: (): Promise<void> => committer.close(),
  };
}

/** Resolves the lines against the warm catalog: one sale, known items, the right hold mode, open now. */
async function prepare({ clock, catalog }: OrderContext, userId: string, kind: 'order' | 'cart', input: readonly LineInput[], claim: IdempotencyClaim | undefined): Promise<Attempt> {
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
  const status = catalog.statusOf(sale);
  if (status !== 'active') throw new AppError(status === 'cancelled' ? 'sale_cancelled' : 'sale_not_active');
  const expiresAt = new Date(clock.now().getTime() + sale.paymentWindowS * 1000);
  return { kind, userId, sale, lines, id: randomUUID(), expiresAt, idempotency: claim };
}

/** The gate admits, then the batch commits; an admission that does not end in a committed reservation goes back to the gate. */
async function admitThenCommit({ inventory, log }: OrderContext, committer: Committer, inFlight: { count: number }, a: Attempt): Promise<AttemptResult> {
  inFlight.count++;
  try {
    const gateLines = a.lines.map((l) => ({ saleItemId: l.saleItemId, quantity: l.quantity }));
    const admission = tracer.enabled
      ? await tracer.run('gate admit', { attributes: { 'flashsale.lines': gateLines.length } }, async (span) => {
        const decided = await inventory.admit(a.userId, gateLines);
        span.setAttributes({ 'flashsale.gate.outcome': decided.ok ? 'admitted' : decided.reason });
        return decided;
      })
      : await inventory.admit(a.userId, gateLines);
    if (!admission.ok) throw new AppError(admission.reason);
    try {
      return tracer.enabled
        ? await tracer.run('group_commit wait', { attributes: { 'flashsale.order_id': a.kind === 'order' ? a.id : undefined } }, () => submitTraced(committer, a))
        : await committer.submit(a);
    } catch (refused) {
      // An undo that fails (gate unreachable) keeps the refusal: the gate just stays more
      // conservative than the database until its next rebuild.
      await inventory.undoAdmission(a.userId, gateLines).catch((error: unknown) => log.warn({ err: error, userId: a.userId }, 'could not give an admission back to the gate'));
      throw refused;
    }
  } finally {
    inFlight.count--;
  }
}

/** Submits with the attempt's trace taken from the active span (the group commit links to it too). */
function submitTraced(committer: Committer, a: Attempt): Promise<AttemptResult> {
  a.trace = tracer.current();
  return committer.submit(a);
}

async function commitBatch(ctx: OrderContext, options: PurchaseOptions, attempts: readonly Attempt[]): Promise<Array<BatchOutcome<AttemptResult>>> {
  try {
    const outcomes = await ctx.db.transaction((tx) => writeBatch(ctx, tx, attempts, options.onDatabaseRefusal));
    const units = attempts.reduce((sum, a, i) => sum + (outcomes[i]!.ok ? a.lines.reduce((n, l) => n + l.quantity, 0) : 0), 0);
    options.onBatchCommitted?.(attempts.length, units);
    return outcomes;
  } catch (error) {
    return attempts.map(() => ({ ok: false, error: new AppError('unavailable', 'Could not save the order; retry.', { retryAfterS: 1, cause: error }) }));
  }
}

/** One transaction for the batch: claim idempotency keys, reserve every attempt's stock, write the orders and the stored answers. */
async function writeBatch(ctx: OrderContext, tx: Tx, attempts: readonly Attempt[], onRefusal?: (reason: string) => void): Promise<Array<BatchOutcome<AttemptResult>>> {
  const { clock, inventory, idempotency } = ctx;
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
  const traces: Array<TraceCarrier | undefined> = [];
  const responses: Array<{ claim: IdempotencyClaim; status: number; body: unknown }> = [];
  const unclaim: IdempotencyClaim[] = [];
  live.forEach((attemptIndex, k) => {
    const a = attempts[attemptIndex]!;
    const result = reserved[k]!;
    if (!result.ok) {
      onRefusal?.(result.reason);
      outcomes[attemptIndex] = { ok: false, error: new AppError(result.reason) };
      if (a.idempotency) unclaim.push(a.idempotency);
      return;
    }
    const value: AttemptResult = a.kind === 'order' ? { kind: 'order', order: toNewOrder(clock, a, result.holds) } : { kind: 'cart', items: toCartItems(a, result.holds) };
    if (value.kind === 'order') {
      orders.push(value.order);
      traces.push(a.trace);
    }
    outcomes[attemptIndex] = { ok: true, value };
    if (a.idempotency) responses.push({ claim: a.idempotency, status: 201, body: value.kind === 'order' ? value.order : value.items[0] });
  });
  // Every write from the holds on is sent, not awaited: the batch waits once, for its commit.
  await writeNewOrders(ctx, tx, orders, traces);
  idempotency.complete(tx, responses);
  idempotency.release(tx, unclaim);
  return outcomes as Array<BatchOutcome<AttemptResult>>;
}

function toNewOrder(clock: Clock, a: Attempt, holds: Hold[]): Order {
  const now = clock.now();
  const items = a.lines.map((line) => ({
    saleItemId: line.saleItemId, productId: line.productId, quantity: line.quantity, unitPrice: line.unitPrice,
    holdId: holds.find((h) => h.saleItemId === line.saleItemId)!.holdId, cancelledAt: null,
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
