import type { FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '../errors.ts';
import { requestHash, type IdempotencyClaim, type IdempotencyStore, type StoredResponse } from '../idempotency.ts';
import type { Hook } from './server.ts';

/** The Idempotency-Key at the HTTP edge: claim or replay before the handler, store the answer after it. */
const KEY_PATTERN = /^[\x21-\x7e]{1,255}$/;

export function idempotencyHandler(store: IdempotencyStore): Hook {
  /**
   * Requests with the same key in flight in this process wait for the first one's response. Keyed by
   * what clients send, but an entry leaves with its request's response: the map is bounded by the
   * requests in flight, not by the keys clients invent.
   */
  const waiting = new Map<string, { hash: string; response: Promise<StoredResponse> }>();
  return async (request, reply) => {
    const key = request.headers['idempotency-key'];
    if (key === undefined) return;
    if (typeof key !== 'string' || !KEY_PATTERN.test(key)) throw new AppError('validation_failed', 'Idempotency-Key must be 1–255 printable ASCII characters.');
    const scope = request.principal ? `user:${request.principal.userId}` : `ip:${request.ip}`;
    const claim: IdempotencyClaim = { scope, key, hash: requestHash([request.method, request.routeOptions.url, request.params, request.body]) };
    const id = `${scope}\u0000${key}`;

    // Duplicates in this process queue behind the first; each then finds its stored answer.
    for (let running = waiting.get(id); running; running = waiting.get(id)) {
      if (running.hash !== claim.hash) throw new AppError('idempotency_key_reused');
      await running.response.catch(() => undefined);
    }
    // Registered before any await, so a concurrent duplicate cannot slip past the check above.
    let settle!: (response: StoredResponse) => void;
    const response = new Promise<StoredResponse>((resolve) => (settle = resolve));
    waiting.set(id, { hash: claim.hash, response });
    const release = (answer: StoredResponse) => {
      if (waiting.get(id)?.response === response) waiting.delete(id);
      settle(answer);
    };
    let stored;
    try {
      stored = await store.lookup(scope, key);
    } catch (error) {
      release({ status: 503, body: null });
      throw error;
    }
    if (stored) {
      release(stored);
      if (stored.status === 0) throw new AppError('idempotency_in_progress');
      return replay(reply, claim, stored);
    }
    request.idempotencyClaim = claim;
    (request as IdempotentRequest)[SETTLE] = release;
  };
}

const SETTLE = Symbol('idempotency.settle');
type IdempotentRequest = FastifyRequest & { [SETTLE]?: (response: StoredResponse) => void };

function replay(reply: FastifyReply, claim: IdempotencyClaim, stored: StoredResponse & { hash: string }) {
  if (stored.hash !== claim.hash) throw new AppError('idempotency_key_reused');
  return reply.code(stored.status).header('idempotent-replayed', 'true').send(stored.body);
}

export function storeIdempotentResponse(store: IdempotencyStore) {
  return async (request: FastifyRequest, reply: FastifyReply, payload: unknown) => {
    const settle = (request as IdempotentRequest)[SETTLE];
    const claim = request.idempotencyClaim;
    if (!settle || !claim) return payload;
    const body = typeof payload === 'string' ? safeParse(payload) : null;
    const response = { status: reply.statusCode, body };
    try {
      if (request.routeOptions.config.idempotency === 'store' && reply.statusCode >= 200 && reply.statusCode < 300) await store.store(claim, response);
    } finally {
      settle(response);
    }
    return payload;
  };
}

function safeParse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

