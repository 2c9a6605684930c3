import { Type } from '@sinclair/typebox';
import type { ServerResponse } from 'node:http';
import { AppError } from '../platform/errors.ts';
import { openEventStream } from '../platform/http/event-stream.ts';
import type { App } from '../platform/http/server.ts';
import { errors, IdParams, StringEnum, Timestamp, Uuid } from '../platform/http/schemas.ts';
import type { Inventory } from '../inventory/index.ts';
import type { Catalog, FlashSale } from './index.ts';

/** What a watcher of a sale sees: the gate's counters and the sale's status by the clock. */
export const LiveSnapshotBody = Type.Object({
  saleId: Uuid,
  status: StringEnum(['scheduled', 'active', 'ended', 'cancelled']),
  serverTime: Timestamp,
  startsAt: Timestamp,
  endsAt: Timestamp,
  items: Type.Array(Type.Object({
    id: Uuid,
    remaining: Type.Integer({ description: "Units still on sale, from the gate's counters." }),
    soldOut: Type.Boolean(),
  })),
}, { description: 'A sale as a watcher sees it now. As server-sent events, one `stock` event carrying this object whenever it changes.' });

export interface LiveOptions {
  /** How often a watched sale's counters are read, and a change pushed. */
  intervalMs: number;
  /** Streams open at once in this process; one more is refused with 503 `overloaded`. */
  maxStreams: number;
  /** A comment line this often keeps proxies from closing an idle stream. */
  heartbeatMs?: number;
}

interface Watch {
  sale: FlashSale;
  streams: Set<ServerResponse>;
  last: string;
  timer: NodeJS.Timeout;
  reading: boolean;
}

/**
 * `GET /v1/flash-sales/{id}/live`: the sale's remaining stock and status, read from the gate's
 * counters (memory, or Redis), never from the database. One reader per watched sale, however many
 * watch it: every `intervalMs` it reads the counters and writes the snapshot to every stream when
 * it changed. Without `Accept: text/event-stream`, one JSON snapshot.
 */
export function registerLiveRoutes(app: App, { catalog, inventory, now, options }: { catalog: Catalog; inventory: Pick<Inventory, 'available'>; now: () => Date; options: LiveOptions }): void {
  const watches = new Map<string, Watch>();
  let open = 0;
  const heartbeatMs = options.heartbeatMs ?? 15_000;

  async function snapshot(sale: FlashSale) {
    const items = await Promise.all(sale.items.map(async (item) => {
      const remaining = (await inventory.available(item.id)) ?? 0;
      return { id: item.id, remaining, soldOut: remaining <= 0 };
    }));
    return { saleId: sale.id, status: catalog.statusOf(sale), startsAt: sale.startsAt, endsAt: sale.endsAt, items };
  }

  /** The snapshot as the stream sends it; serverTime is left out of the comparison, or every tick would differ. */
  async function frame(sale: FlashSale): Promise<{ key: string; text: string }> {
    const snap = await snapshot(sale);
    const key = JSON.stringify(snap);
    return { key, text: `event: stock\ndata: ${JSON.stringify({ ...snap, serverTime: now() })}\n\n` };
  }

  function watch(sale: FlashSale): Watch {
    const existing = watches.get(sale.id);
    if (existing) return existing;
    const w: Watch = {
      sale, streams: new Set(), last: '', reading: false,
      timer: setInterval(() => void tick(w), options.intervalMs),
    };
    w.timer.unref();
    watches.set(sale.id, w);
    return w;
  }

  async function tick(w: Watch): Promise<void> {
    if (w.reading) return;
    w.reading = true;
    try {
      // The catalog's copy: a sale changed since the first watcher came (its window, its items) is read anew.
      w.sale = catalog.getFlashSale(w.sale.id) ?? w.sale;
      const { key, text } = await frame(w.sale);
      if (key === w.last) return;
      w.last = key;
      for (const stream of w.streams) stream.write(text);
    } catch {
      // The gate unreachable: the watchers keep the last snapshot, and the next tick tries again.
    } finally {
      w.reading = false;
    }
  }

  function leave(w: Watch, stream: ServerResponse): void {
    if (!w.streams.delete(stream)) return;
    open--;
    if (w.streams.size === 0) {
      clearInterval(w.timer);
      watches.delete(w.sale.id);
    }
  }

  // Open streams would hold the server's close forever: end them first.
  app.addHook('preClose', async () => {
    for (const w of watches.values()) for (const stream of [...w.streams]) stream.end();
  });

  app.get('/v1/flash-sales/:id/live', {
    schema: {
      operationId: 'watchFlashSale', tags: ['catalog'], summary: 'Watch a sale: remaining stock and status, live from the gate',
      description: 'With `Accept: text/event-stream`, server-sent events: a `stock` event with the snapshot at once and whenever it changes (checked every 250 ms), a comment line as heartbeat. Otherwise one JSON snapshot. 503 `overloaded` when this process already serves its maximum of streams.',
      params: IdParams,
      response: { 200: LiveSnapshotBody, ...errors(404, 422, 503) },
    },
  }, async (request, reply) => {
    const sale = await catalog.findFlashSale(request.params.id.toLowerCase());
    if (!sale) throw new AppError('not_found', 'No such flash sale.');
    const accept = request.headers.accept ?? '';
    if (!accept.includes('text/event-stream')) return { ...(await snapshot(sale)), serverTime: now() };
    if (open >= options.maxStreams) throw new AppError('overloaded', 'Too many live streams open; poll the JSON snapshot instead.', { retryAfterS: 5 });

    const first = await frame(sale);
    const w = watch(sale);
    if (w.last === '') w.last = first.key;
    openEventStream(request, reply, first.text, {
      heartbeatMs,
      onOpen(stream) {
        w.streams.add(stream);
        open++;
      },
      onClose: (stream) => leave(w, stream),
    });
  });
}
