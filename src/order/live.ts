import type { ServerResponse } from 'node:http';
import { Type } from '@sinclair/typebox';
import { openEventStream } from '../platform/http/event-stream.ts';
import { AppError } from '../platform/errors.ts';
import type { App, Guards } from '../platform/http/server.ts';
import { bearer, errors, IdParams } from '../platform/http/schemas.ts';
import { ShipmentSchema, type Shipment } from '../fulfillment/contracts.ts';
import { OrderSchema, orderVersion, type Order, type Orders } from './index.ts';

/** The buyer's own order with its tracking: the shipments of its lines. */
export const OrderWithTracking = Type.Composite([OrderSchema, Type.Object({ shipments: Type.Array(ShipmentSchema) })]);

export interface OrderLiveOptions {
  /** How often this process reads the status of every watched order (one query for all of them). */
  intervalMs: number;
  /** Streams open at once in this process; one more is refused with 503 `overloaded`. */
  maxStreams: number;
  /** A stream is ended after this long; the browser reconnects with its current token (default 10 min). */
  maxAgeMs?: number;
  /** A comment line this often keeps proxies from closing an idle stream. */
  heartbeatMs?: number;
}

/** An order's open streams. Every stream of an order is its buyer's (the route checked), so one read serves them all. */
interface Watch {
  userId: string;
  streams: Set<ServerResponse>;
  version: string;
}

/**
 * `GET /v1/orders/{id}/live`: the buyer's own order, pushed as server-sent events when its status
 * changes (the webhook applied, the deadline passed, a cancel) — in whichever process that happened.
 * This process learns of it by reading `status, updated_at` of every order it watches in one query
 * every `intervalMs`, however many streams are open; the full order is read again only when it
 * changed (docs/decisions.md, "An order's status is pushed…").
 */
export function registerOrderLiveRoute(
  app: App,
  { orders, guards, shipmentsOf, options }: { orders: Pick<Orders, 'getOrder' | 'versions'>; guards: Guards; shipmentsOf: (orderId: string) => Promise<Shipment[]>; options: OrderLiveOptions },
): void {
  const watches = new Map<string, Watch>();
  let open = 0;
  let reading = false;
  let timer: NodeJS.Timeout | undefined;
  const heartbeatMs = options.heartbeatMs ?? 15_000;
  const maxAgeMs = options.maxAgeMs ?? 600_000;

  const read = async (userId: string, orderId: string) => ({ ...(await orders.getOrder(userId, orderId)), shipments: await shipmentsOf(orderId) });
  const event = (order: Order) => `event: order\ndata: ${JSON.stringify(order)}\n\n`;

  async function tick(): Promise<void> {
    if (reading) return;
    reading = true;
    try {
      const versions = await orders.versions([...watches.keys()]);
      await Promise.all([...watches].map(async ([orderId, w]) => {
        const version = versions.get(orderId);
        if (version === undefined || version === w.version) return;
        try {
          const text = event(await read(w.userId, orderId));
          w.version = version;
          for (const stream of w.streams) stream.write(text);
        } catch {
          // Read again at the next tick: the version is not taken until the order was sent.
        }
      }));
    } catch {
      // The database unreachable: the streams keep their last order, and the next tick tries again.
    } finally {
      reading = false;
    }
  }

  function leave(orderId: string, stream: ServerResponse): void {
    const w = watches.get(orderId);
    if (!w?.streams.delete(stream)) return;
    open--;
    if (w.streams.size === 0) watches.delete(orderId);
    if (watches.size === 0 && timer) {
      clearInterval(timer);
      timer = undefined;
    }
  }

  app.addHook('preClose', async () => {
    for (const w of watches.values()) for (const stream of [...w.streams]) stream.end();
  });

  app.get('/v1/orders/:id/live', {
    preHandler: guards.auth('buyer'),
    schema: {
      operationId: 'watchOrder', tags: ['orders'], summary: 'Watch one of your orders: its status pushed as it changes', security: bearer, params: IdParams,
      description: 'With `Accept: text/event-stream`, server-sent events: an `order` event with the order (as `GET /v1/orders/{id}` answers it) at once and whenever its status changes, '
        + 'in whichever process the change happened (this process checks every watched order in one query each `LIVE_ORDER_INTERVAL_MS`, 1 s by default); a comment line as heartbeat; '
        + 'the stream ends after 10 minutes and the client reconnects with its current token. Otherwise the order as JSON. 503 `overloaded` when this process already serves its maximum of streams.',
      response: { 200: OrderWithTracking, ...errors(401, 403, 404, 422, 503) },
    },
  }, async (request, reply) => {
    const userId = request.principal!.userId;
    const orderId = request.params.id.toLowerCase();
    const order = await read(userId, orderId);
    if (!(request.headers.accept ?? '').includes('text/event-stream')) return order;
    if (open >= options.maxStreams) throw new AppError('overloaded', 'Too many live streams open; ask for the order instead.', { retryAfterS: 5 });

    openEventStream(request, reply, event(order), {
      heartbeatMs, maxAgeMs,
      onOpen(stream) {
        let w = watches.get(orderId);
        if (!w) {
          w = { userId, streams: new Set(), version: orderVersion(order.status, order.updatedAt) };
          watches.set(orderId, w);
        }
        w.streams.add(stream);
        open++;
        if (!timer) {
          timer = setInterval(() => void tick(), options.intervalMs);
          timer.unref();
        }
      },
      onClose: (stream) => leave(orderId, stream),
    });
  });
}
