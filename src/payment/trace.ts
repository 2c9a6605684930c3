import { tracer, type Attributes } from '../platform/tracing/tracing.ts';
import { isUuid } from '../platform/uuid.ts';
import type { PaymentContext } from './context.ts';

/**
 * Runs `fn` in a span of the order's own trace (tracing on): the provider's webhook comes in on a
 * request of its own, but it belongs to the purchase's story. The span is a child of the
 * span the order was placed in, linked to the request that brought it; the events written inside
 * (payment.succeeded …) continue that trace. An order placed while tracing was off: a plain child.
 */
export async function inOrderTrace<T>(ctx: PaymentContext, orderId: string | undefined, name: string, attributes: Attributes, fn: () => Promise<T>): Promise<T> {
  if (!tracer.enabled) return fn();
  const order = orderId && isUuid(orderId.toLowerCase()) ? await ctx.orders.traceOf(orderId.toLowerCase()) : undefined;
  const request = tracer.current();
  return tracer.run(name, { parent: order, links: order ? [request] : [], attributes: { 'flashsale.order_id': orderId, ...attributes } }, fn);
}
