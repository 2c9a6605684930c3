import { createHash, randomBytes } from 'node:crypto';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Config } from '../platform/config.ts';
import { createLogger, type Logger } from '../platform/logger.ts';
import { registerApiKeyCheck } from './auth.ts';
import { registerBodyParsers } from './body-parsers.ts';
import { PspCore, type RequestContext, type Result } from './core.ts';
import { PspError } from './errors.ts';
import { defaultKnobs, patchKnobs, seededRandom, type Knobs, type PspKnobConfig } from './knobs.ts';
import { crossSitePage, hostedPage, notFoundPage, type PageResult } from './page.ts';
import type { Params } from './params.ts';
import { registerResponseShape, sendError, toPspError } from './responses.ts';
import { FileJournal, MemoryJournal, PspStore, type EventObject, type Op } from './state.ts';
import { WebhookDispatcher, type RetryPolicy } from './webhooks.ts';

export type PspConfig = PspKnobConfig & Pick<Config,
  'LOG_LEVEL' | 'BODY_LIMIT_BYTES' | 'PSP_PUBLIC_URL' | 'PSP_API_KEY' | 'PSP_WEBHOOK_SECRET' | 'PSP_WEBHOOK_URL' | 'PSP_DATA_DIR' | 'PSP_SEED'>;

export interface PspOptions {
  config: PspConfig;
  log?: Logger;
  /** Uniform in [0, 1); defaults to a PRNG seeded with PSP_SEED, so a run can be repeated. */
  random?: () => number;
  /** Milliseconds since epoch; for `created` fields and webhook signature timestamps. */
  now?: () => number;
  /** Webhook retries; defaults to 8 attempts, 1 s doubling up to 60 s. */
  webhookRetry?: Partial<RetryPolicy>;
  /** One delivery attempt's time limit (default 10 s). */
  webhookAttemptTimeoutMs?: number;
  /** Base of the hosted page links, when only known after listen (tests on port 0); default PSP_PUBLIC_URL. */
  publicUrl?: () => string;
}

/** The simulator: a Fastify instance (not listening yet). `close()` also stops webhook deliveries and closes the journal. */
export type PspServer = FastifyInstance;

const MEMORY = 'memory://';
const KEY_PATTERN = /^[\x20-\x7e]{1,255}$/;

/**
 * A payment service provider simulator whose wire format follows Stripe's: form-encoded (or JSON)
 * requests with `Authorization: Bearer <key>`, `Idempotency-Key`, Stripe-shaped objects and errors,
 * signed webhooks — plus a hosted pay/decline page and fault-injection knobs (`/_sim/knobs`).
 */
export async function createPspServer(options: PspOptions): Promise<PspServer> {
  const { config } = options;
  const log = options.log ?? createLogger(config);
  const now = options.now ?? Date.now;
  const random = options.random ?? seededRandom(config.PSP_SEED);
  let knobs: Knobs = defaultKnobs(config);
  const secrets = config.PSP_WEBHOOK_SECRET.split(',').map((s) => s.trim()).filter(Boolean);

  const store = new PspStore(config.PSP_DATA_DIR === MEMORY ? new MemoryJournal() : new FileJournal(config.PSP_DATA_DIR));
  const publicUrl = options.publicUrl ?? (() => config.PSP_PUBLIC_URL);
  const core = new PspCore({ store, knobs: () => knobs, random, now, publicUrl });
  const dispatcher = new WebhookDispatcher({
    url: config.PSP_WEBHOOK_URL,
    secrets,
    now,
    knobs: () => knobs,
    retry: { attempts: 8, baseMs: 1000, maxMs: 60_000, ...options.webhookRetry },
    attemptTimeoutMs: options.webhookAttemptTimeoutMs ?? 10_000,
    log,
    onOutcome: (eventId, outcome) => store.commit([{ op: 'delivery', eventId, ...outcome }]),
  });
  /** Aborted when the server closes: hanging (latency / timeout) requests answer at once. */
  const closing = new AbortController();

  const app = Fastify({
    loggerInstance: log as FastifyBaseLogger,
    bodyLimit: config.BODY_LIMIT_BYTES,
    return503OnClosing: true,
    genReqId: () => `req_${randomBytes(10).toString('hex')}`,
    frameworkErrors: (error, _request, reply) => sendError(reply, toPspError(error)),
  });

  registerBodyParsers(app);
  registerResponseShape(app, log);
  registerApiKeyCheck(app, config.PSP_API_KEY);

  const sleep = (ms: number) => abortableSleep(ms, closing.signal);

  /** Every /v1 call: latency knob, Idempotency-Key, one journal batch, webhooks, timeout knob. */
  async function api(request: FastifyRequest, reply: FastifyReply, run: (params: Params, ctx: RequestContext) => Result): Promise<unknown> {
    const once = requestKnobs(request.headers['x-sim-knobs']);
    await sleep(once.latencyMs ?? knobs.latencyMs);
    if (closing.signal.aborted) throw new PspError(503, 'api_error', 'The simulator is shutting down.');
    const params = paramsOf(request);
    const header = request.headers['idempotency-key'];
    const key = request.method === 'POST' && typeof header === 'string' ? header : undefined;
    if (key !== undefined && !KEY_PATTERN.test(key)) {
      throw new PspError(400, 'invalid_request_error', 'Idempotency-Key must be 1–255 printable ASCII characters.', 'idempotency_key_invalid');
    }
    let result: Result;
    const stored = key === undefined ? undefined : store.idempotency.get(key);
    const hash = createHash('sha256').update(JSON.stringify([request.method, request.routeOptions.url, request.params, params])).digest('base64url');
    if (stored) {
      if (stored.hash !== hash) {
        throw new PspError(400, 'idempotency_error', `Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '${key}' if you meant to execute a different request.`);
      }
      reply.header('idempotent-replayed', 'true');
      result = { status: stored.status, body: stored.body, ops: [] };
    } else {
      result = run(params, { requestId: request.id, idempotencyKey: key ?? null });
      const ops: Op[] = [...result.ops];
      if (key !== undefined) ops.push({ op: 'idempotency', key, response: { hash, status: result.status, body: result.body } });
      store.commit(ops);
      for (const op of ops) if (op.op === 'event') dispatcher.schedule(op.event, op.copies);
    }
    const timeoutRate = once.timeoutRate ?? knobs.timeoutRate;
    if (timeoutRate > 0 && random() < timeoutRate) {
      // Handled and durable, but the answer never arrives in time: the ambiguous case a client must survive.
      await sleep(knobs.timeoutMs);
      throw new PspError(504, 'api_error', 'The request timed out.');
    }
    return reply.code(result.status).send(result.body);
  }

  app.post('/v1/payment_intents', (request, reply) => api(request, reply, (params, ctx) => core.createIntent(params, ctx)));
  app.get<{ Params: { id: string } }>('/v1/payment_intents/:id', (request, reply) =>
    api(request, reply, () => ({ status: 200, body: core.intent(request.params.id), ops: [] })));
  app.post<{ Params: { id: string } }>('/v1/payment_intents/:id/confirm', (request, reply) =>
    api(request, reply, (params, ctx) => core.confirm(request.params.id, params, ctx)));
  app.post<{ Params: { id: string } }>('/v1/payment_intents/:id/cancel', (request, reply) =>
    api(request, reply, (params, ctx) => core.cancel(request.params.id, params, ctx)));
  app.post('/v1/refunds', (request, reply) => api(request, reply, (params, ctx) => core.refund(params, ctx)));
  app.get<{ Params: { id: string } }>('/v1/refunds/:id', (request, reply) =>
    api(request, reply, () => ({ status: 200, body: core.refundById(request.params.id), ops: [] })));
  app.get<{ Params: { id: string } }>('/v1/events/:id', (request, reply) =>
    api(request, reply, () => ({ status: 200, body: core.eventById(request.params.id), ops: [] })));

  // ---- lists, Stripe-shaped, newest first (one helper: listNewestFirst) ----
  app.get('/v1/payment_intents', (request, reply) => api(request, reply, (params) =>
    ({ status: 200, body: listNewestFirst('/v1/payment_intents', store.intents.values(), params), ops: [] })));
  app.get('/v1/refunds', (request, reply) => api(request, reply, (params) =>
    ({ status: 200, body: listNewestFirst('/v1/refunds', store.refunds.values(), params, whereParam(params, 'payment_intent', (r) => r.payment_intent)), ops: [] })));
  app.get('/v1/events', (request, reply) => api(request, reply, (params) =>
    ({ status: 200, body: listNewestFirst('/v1/events', store.events, params, whereParam(params, 'type', (e) => e.type)), ops: [] })));
  // ---- end of lists ----

  // ---- the hosted payment page ----
  /** Pay and Decline only from the page itself: a form another site posts (CSRF) is refused before its body is read. */
  async function refuseCrossSite(request: FastifyRequest, reply: FastifyReply) {
    if (isCrossSite(request, publicUrl())) return reply.code(403).type('text/html; charset=utf-8').send(crossSitePage());
  }
  app.get<{ Params: { id: string }; Querystring: { result?: string } }>('/pay/:id', async (request, reply) => {
    const intent = store.intents.get(request.params.id);
    if (!intent) return reply.code(404).type('text/html; charset=utf-8').send(notFoundPage(request.params.id));
    const result = request.query.result;
    const shown: PageResult = result === 'succeeded' || result === 'declined' || result === 'unchanged' ? result : undefined;
    return reply.type('text/html; charset=utf-8').send(hostedPage(intent, shown));
  });
  for (const action of ['pay', 'decline'] as const) {
    app.post<{ Params: { id: string } }>(`/pay/:id/${action}`, { onRequest: refuseCrossSite }, async (request, reply) => {
      const id = request.params.id;
      if (!store.intents.has(id)) return reply.code(404).type('text/html; charset=utf-8').send(notFoundPage(id));
      const { ops, outcome } = core.hostedAction(id, action);
      store.commit(ops);
      for (const op of ops) if (op.op === 'event') dispatcher.schedule(op.event, op.copies);
      return reply.redirect(`/pay/${encodeURIComponent(id)}?result=${outcome}`, 303);
    });
  }

  // ---- simulator controls ----
  app.get('/_sim/knobs', async () => knobs);
  app.post('/_sim/knobs', async (request, reply) => {
    const patched = patchKnobs(knobs, request.body ?? {});
    if ('errors' in patched) return sendError(reply, new PspError(400, 'invalid_request_error', `Invalid knobs: ${patched.errors.join('; ')}`, 'parameter_invalid'));
    knobs = patched.knobs;
    log.info({ knobs }, 'psp knobs changed');
    return knobs;
  });
  app.get<{ Querystring: { payment_intent?: string; type?: string } }>('/_sim/events', async (request) => {
    const { payment_intent: intentId, type } = request.query;
    const data = store.events
      .filter((e) => (!type || e.type === type) && (!intentId || intentIdOf(e) === intentId))
      .map((event) => ({ ...simEvent(event), event }));
    return { object: 'list', data };
  });
  app.post<{ Params: { id: string } }>('/_sim/events/:id/resend', async (request) => {
    const ops = core.resend(request.params.id);
    store.commit(ops);
    dispatcher.schedule(core.eventById(request.params.id), 1);
    return simEvent(core.eventById(request.params.id));
  });

  app.get('/health', async () => ({ status: 'ok', intents: store.intents.size, events: store.events.length }));

  app.addHook('preClose', async () => {
    closing.abort();
    dispatcher.close();
  });
  app.addHook('onClose', async () => store.close());

  // Deliveries a previous run planned but did not finish go out again (at-least-once, like a provider).
  for (const event of store.events) {
    const pending = store.pendingCopies(event.id);
    if (pending > 0) dispatcher.schedule(event, pending);
  }

  function simEvent(event: EventObject) {
    const d = store.deliveries.get(event.id);
    const copies = d?.copies ?? 0;
    const status = copies === 0 ? 'dropped' : d && d.delivered + d.failed >= copies ? (d.failed > 0 ? 'failed' : 'delivered') : 'pending';
    return {
      id: event.id, type: event.type, created: event.created, payment_intent: intentIdOf(event), status,
      copies, delivered: d?.delivered ?? 0, failed: d?.failed ?? 0, attempts: d?.attempts ?? 0,
      last_status: d?.lastStatus ?? null, last_error: d?.lastError ?? null,
    };
  }

  return app;
}

function intentIdOf(event: EventObject): string {
  const object = event.data.object;
  return object.object === 'payment_intent' ? object.id : object.payment_intent;
}

/**
 * Stripe's list shape `{ object: 'list', url, has_more, data }`, newest first: `limit` (clamped to
 * 1–100, default 10) and `starting_after` (the last id of the previous page; an unknown one lists
 * nothing). The store keeps items in creation order (a Map keeps a key's first position on update).
 */
function listNewestFirst<T extends { id: string }>(url: string, oldestFirst: Iterable<T>, params: Params, matches: (item: T) => boolean = () => true) {
  const limitText = params.limit;
  const limit = typeof limitText === 'string' && /^\d+$/.test(limitText) ? Math.min(100, Math.max(1, Number(limitText))) : 10;
  let newest = [...oldestFirst].reverse().filter(matches);
  if (typeof params.starting_after === 'string') {
    const at = newest.findIndex((item) => item.id === params.starting_after);
    newest = at < 0 ? [] : newest.slice(at + 1);
  }
  return { object: 'list', url, has_more: newest.length > limit, data: newest.slice(0, limit) };
}

/** A list filter from a query parameter (`?type=…`): items whose field equals it, or all when it is absent. */
function whereParam<T>(params: Params, name: string, field: (item: T) => string): (item: T) => boolean {
  const wanted = params[name];
  return typeof wanted === 'string' ? (item) => field(item) === wanted : () => true;
}

/**
 * A browser's cross-site form post: `Sec-Fetch-Site` other than same-origin, or an `Origin` that is
 * neither the public URL's (behind a proxy) nor the one the request reached. No Origin at all is not a
 * browser's form post (curl, the README tour) and passes.
 */
function isCrossSite(request: FastifyRequest, publicUrl: string): boolean {
  const site = request.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin' && site !== 'none') return true;
  const origin = request.headers.origin;
  if (origin === undefined) return false;
  const given = originOf(origin);
  return given === undefined || (given !== originOf(publicUrl) && given !== originOf(`${request.protocol}://${request.host}`));
}

/** `https://Example.test:443/x` → `https://example.test`; undefined for `null` (an opaque origin) or a non-URL. */
function originOf(url: string): string | undefined {
  try {
    const { origin } = new URL(url);
    return origin === 'null' ? undefined : origin;
  } catch {
    return undefined;
  }
}

function paramsOf(request: FastifyRequest): Params {
  const source: unknown = request.method === 'GET' ? request.query : request.body;
  if (source === undefined || source === null) return {};
  if (typeof source !== 'object' || Array.isArray(source)) throw new PspError(400, 'invalid_request_error', 'The request body must be an object of parameters.');
  return source as Params;
}

function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  if (ms <= 0 || signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

/**
 * Per-request knobs: `X-Sim-Knobs: {"latencyMs": 2000, "timeoutRate": 1}` applies to that call
 * only (declines per request use the provider's test cards, e.g. `pm_card_chargeDeclined`).
 */
function requestKnobs(header: string | string[] | undefined): { latencyMs?: number; timeoutRate?: number } {
  if (typeof header !== 'string') return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(header);
  } catch {
    throw new PspError(400, 'invalid_request_error', 'X-Sim-Knobs must be a JSON object.');
  }
  const { latencyMs, timeoutRate } = (parsed ?? {}) as Record<string, unknown>;
  const knobs: { latencyMs?: number; timeoutRate?: number } = {};
  if (typeof latencyMs === 'number' && latencyMs >= 0 && latencyMs <= 600_000) knobs.latencyMs = latencyMs;
  if (typeof timeoutRate === 'number' && timeoutRate >= 0 && timeoutRate <= 1) knobs.timeoutRate = timeoutRate;
  return knobs;
}
