import type { Tx } from '../platform/database/index.ts';
import type { OutgoingEvent } from '../platform/broker/outbox.ts';
import { tracer, type TraceCarrier } from '../platform/tracing/tracing.ts';
import { OrderTopics, type OrderDeadline } from './contracts.ts';
import type { OrderContext } from './context.ts';
import { orderCreatedEvent, type Order } from './model.ts';
import * as sql from './sql.ts';

/**
 * Writes new orders (a purchase batch, or a checkout) with their lines, in the caller's
 * transaction, and their events: `order.created`, and the deadline message to order itself — the
 * close check when the payment window ends. What that check cannot close (the provider did not
 * answer), the sweeper closes once the order is a grace period overdue; a second, "recovery"
 * message per order at that time would be one more outbox row in every purchase for the same check.
 *
 * `traces[i]` is the trace order i was placed in (a purchase batch serves many requests, each in its
 * trace); by default the active span's. The order keeps it, and its events continue it.
 */
export async function writeNewOrders({ clock, emit }: OrderContext, tx: Tx, orders: readonly Order[], traces?: ReadonlyArray<TraceCarrier | undefined>): Promise<void> {
  if (orders.length === 0) return;
  const active = traces ? undefined : tracer.current();
  const traceOf = (i: number) => (traces ? traces[i] : active);
  const items = orders.flatMap((o) => o.items.map((i) => ({ ...i, orderId: o.id })));
  const now = clock.now().getTime();
  const events = orders.flatMap((o, i): OutgoingEvent[] => {
    const untilDeadline = Math.max(0, o.expiresAt.getTime() - now);
    const trace = traceOf(i);
    return [
      { topic: OrderTopics.created, payload: orderCreatedEvent(o), trace },
      { topic: OrderTopics.deadline, payload: { orderId: o.id, check: 'close' } satisfies OrderDeadline, delayMs: untilDeadline, trace },
    ];
  });
  // Sent, not awaited (`Tx.send`): none needs an answer; they run in this order, before the commit.
  tx.send(sql.insertOrders, [
    orders.map((o) => o.id), orders.map((o) => o.userId), orders.map((o) => o.saleId), orders.map((o) => o.totalAmount),
    orders.map((o) => o.currency), orders.map((o) => o.expiresAt.toISOString()), clock.now(), orders.map((_, i) => traceOf(i)?.traceparent ?? null),
  ]);
  tx.send(sql.insertOrderItems, [
    items.map((i) => i.orderId), items.map((i) => i.saleItemId), items.map((i) => i.holdId), items.map((i) => i.productId),
    items.map((i) => i.quantity), items.map((i) => i.unitPrice),
  ]);
  await emit(tx, events);
}
