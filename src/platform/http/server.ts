import { randomUUID } from 'node:crypto';
import Fastify, { type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest, type RawServerDefault } from 'fastify';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import rateLimit, { normalizeIP } from '@fastify/rate-limit';
import type { RedisClient } from '../redis.ts';
import underPressure from '@fastify/under-pressure';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { Ajv } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { trustedProxies, type Config, type TrustedProxies } from '../config.ts';
import { AppError, isAppError, type ErrorCode } from '../errors.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import type { Principal, Role, TokenService } from '../tokens.ts';
import type { IdempotencyClaim, IdempotencyStore } from '../idempotency.ts';
import { hasLoneSurrogate } from '../unicode.ts';
import { isBackendUnavailable } from '../unavailable.ts';
import { idempotencyHandler, storeIdempotentResponse } from './idempotency-hooks.ts';
import { LazyRequestLogger } from './request-logger.ts';
import { registerTracing, requestLogController } from './tracing.ts';

export type App = FastifyInstance<RawServerDefault, IncomingMessage, ServerResponse, FastifyBaseLogger, TypeBoxTypeProvider>;

/** A route guard; plain functions (no `this`) so they fit any route's typing. */
export type Hook = (request: FastifyRequest, reply: FastifyReply) => Promise<unknown>;

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | undefined;
    idempotencyClaim: IdempotencyClaim | undefined;
  }
  interface FastifyContextConfig {
    /** 'store': the response is stored after the handler; 'atomic': the use case stores it in its own transaction. */
    idempotency?: 'store' | 'atomic';
  }
}

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;

export interface HttpDeps {
  config: Config;
  log: Logger;
  metrics: Metrics;
  tokens: TokenService;
  idempotency: IdempotencyStore;
  /**
   * Where the rate limits count: with a Redis connection (built and closed by the composition root),
   * every API process counts against the same limits; without one, this process's bounded LRU.
   */
  rateLimitRedis?: RedisClient | undefined;
}

/** Guards a route: who may call it, the per-user rate limit, and Idempotency-Key handling. */
export interface Guards {
  /** Requires a valid token with one of these roles; applies the per-user rate limit. */
  auth(...roles: Role[]): Hook[];
  /** The two halves of `auth`, for a route that answers some requests in between. */
  authenticate(...roles: Role[]): Hook;
  perUserLimit: Hook;
  /** Idempotency-Key handling; put it after `auth` so keys are scoped per user. */
  idempotency: Hook;
}

/**
 * The address every per-address limit counts: the client's (see TRUST_PROXY), an IPv6 one widened to
 * its /64 — one subscriber's allocation — so that rotating through it does not reset the limits.
 */
export function clientAddress(request: FastifyRequest): string {
  return normalizeIP(request.ip, 64);
}

/**
 * TRUST_PROXY in Fastify's terms. Fastify 5.12 ignores a bare number (it cannot tell the proxy from
 * a client that reaches the origin directly), so a hop count becomes the trust function Fastify
 * used to build from it: the socket peer and the n-1 entries before it are proxies, the next entry
 * is the client. Safe only where the origin is reachable through the proxies alone (docs/operations.md).
 */
function fastifyTrustProxy(trusted: TrustedProxies): boolean | string[] | ((address: string, hop: number) => boolean) {
  if (typeof trusted !== 'number') return trusted;
  return (_address, hop) => hop < trusted;
}

/** Body validation is strict (no coercion, no stripping of unknown fields); query and params are coerced. */
function validators() {
  const strict = addFormats(new Ajv({ coerceTypes: false, removeAdditional: false, useDefaults: true, allErrors: false, strict: false }));
  const coercing = addFormats(new Ajv({ coerceTypes: true, removeAdditional: false, useDefaults: true, allErrors: false, strict: false }));
  return ({ schema, httpPart }: { schema: object; httpPart?: string }) => (httpPart === 'body' ? strict : coercing).compile(schema);
}

/** Builds the HTTP edge: validation, the error map, flow control, OpenAPI, metrics. Routes are added by the caller. */
export async function createHttpServer(deps: HttpDeps): Promise<{ app: App; guards: Guards }> {
  const { config, log, metrics } = deps;
  const app = Fastify({
    loggerInstance: log as FastifyBaseLogger,
    bodyLimit: config.BODY_LIMIT_BYTES,
    trustProxy: fastifyTrustProxy(trustedProxies(config.TRUST_PROXY)),
    genReqId: (req) => (typeof req.headers['x-request-id'] === 'string' && req.headers['x-request-id'].length <= 128 ? req.headers['x-request-id'] : randomUUID()),
    ajv: { customOptions: {} },
    childLoggerFactory: (logger, bindings, options) => new LazyRequestLogger(logger as Logger, bindings, options),
    logController: requestLogController(),
    // While closing, our own hook answers 503 in the error shape, with Retry-After.
    return503OnClosing: false,
    // Router errors (a bad %-escape, an overlong path parameter) would otherwise bypass the error handler and its body shape.
    frameworkErrors: (error, request, reply) => sendError(reply, request, toAppError(error), log),
  }).withTypeProvider<TypeBoxTypeProvider>();
  app.setValidatorCompiler(validators());
  registerTracing(app);
  app.decorateRequest('principal', undefined);
  app.decorateRequest('idempotencyClaim', undefined);

  app.setErrorHandler((error: FastifyError, request, reply) => sendError(reply, request, toAppError(error), log));
  let closing = false;
  app.addHook('preClose', async () => { closing = true; });
  app.addHook('onRequest', async (request, reply) => {
    if (closing) return sendError(reply, request, new AppError('unavailable', 'Shutting down; retry on another instance.', { retryAfterS: 1 }), log);
  });
  app.setNotFoundHandler((request, reply) => sendError(reply, request, new AppError('route_not_found', `No route ${request.method} ${request.url}.`), log));

  app.addHook('preValidation', checkRequestText);

  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    metrics.httpRequests.inc({ method: request.method, route, status: String(reply.statusCode) });
    metrics.httpDuration.observe({ method: request.method, route }, reply.elapsedTime / 1000);
  });

  await registerFlowControl(app, deps);
  await registerOpenApi(app);
  const guards = createGuards(app, deps);
  app.addHook('onSend', storeIdempotentResponse(deps.idempotency));
  return { app, guards };
}

/** Every request's text must be storable, path ids canonical, and a body only where one is taken. */
async function checkRequestText(request: FastifyRequest): Promise<void> {
  // Text must be storable: a lone UTF-16 surrogate (valid JSON: "\ud800") cannot be encoded as
  // UTF-8, and the database would fail on it after earlier writes of the same request succeeded.
  if (hasLoneSurrogate(request.body) || hasLoneSurrogate(request.query) || hasLoneSurrogate(request.params)) {
    throw new AppError('validation_failed', 'Text must be well-formed Unicode: a lone surrogate (\\ud800-\\udfff) cannot be stored.');
  }
  canonicalizeUuidParams(request.params);
  // Strict bodies also for routes that take none: an unexpected body is refused, not silently ignored.
  if (request.is404 || request.body === undefined || request.routeOptions.schema?.body) return;
  const body: unknown = request.body;
  const empty = body === '' || (typeof body === 'object' && body !== null && !Array.isArray(body) && Object.keys(body).length === 0);
  if (!empty) throw new AppError('validation_failed', 'This operation takes no request body.');
}

/** The event-loop guard (503 overloaded) and the per-address rate limit, shared through Redis when given. */
async function registerFlowControl(app: App, { config, log, rateLimitRedis }: HttpDeps): Promise<void> {
  if (config.MAX_EVENT_LOOP_DELAY_MS > 0) {
    await app.register(underPressure, {
      maxEventLoopDelay: config.MAX_EVENT_LOOP_DELAY_MS,
      exposeStatusRoute: false,
      pressureHandler: (request, reply) => {
        sendError(reply, request, new AppError('overloaded', undefined, { retryAfterS: 1 }), log);
      },
    });
  }

  // With Redis, every API process counts against the same limits.
  const limitStore = rateLimitRedis;
  await app.register(rateLimit, {
    ...(limitStore ? { redis: limitStore, nameSpace: `${config.REDIS_KEY_PREFIX}:rate-limit:`, skipOnError: true } : {}),
    global: true,
    max: config.RATE_LIMIT_IP_MAX,
    timeWindow: config.RATE_LIMIT_IP_WINDOW_MS,
    keyGenerator: (request) => `ip:${clientAddress(request)}`,
    errorResponseBuilder: (_request, context) => new AppError('rate_limited', undefined, { retryAfterS: Math.max(1, Math.ceil(context.ttl / 1000)) }),
  });
}

async function registerOpenApi(app: App): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: { title: 'flashsale', version: '0.1.0', description: 'Flash-sale order processing: never oversold, lost, double-charged or stuck. Errors are `{ "error": { "code", "message" } }`.' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } } },
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
}

/** Authentication, the per-user rate limit and idempotency, for the routes to compose. */
function createGuards(app: App, deps: HttpDeps): Guards {
  const { config } = deps;
  // A manual check, not app.rateLimit(): the plugin runs one limiter per request, and the per-IP
  // one has already run by the time the user is known.
  const checkUser = app.createRateLimit({
    max: config.RATE_LIMIT_USER_MAX,
    timeWindow: config.RATE_LIMIT_USER_WINDOW_MS,
    keyGenerator: (request: FastifyRequest) => `user:${request.principal?.userId ?? request.ip}`,
  });
  const perUser: Hook = async (request) => {
    const verdict = await checkUser(request);
    if (!verdict.isAllowed && verdict.isExceeded) throw new AppError('rate_limited', 'Too many requests from this account; retry later.', { retryAfterS: Math.max(1, verdict.ttlInSeconds) });
  };
  const guards: Guards = {
    auth: (...roles) => [authenticate(deps.tokens, roles), perUser],
    authenticate: (...roles) => authenticate(deps.tokens, roles),
    perUserLimit: perUser,
    idempotency: idempotencyHandler(deps.idempotency),
  };
  return guards;
}

function authenticate(tokens: TokenService, roles: readonly Role[]): Hook {
  return async (request) => {
    const header = request.headers.authorization;
    const token = header?.startsWith('Bearer ') ? header.slice(7).trim() : undefined;
    const principal = token ? tokens.verify(token) : undefined;
    if (!principal) throw new AppError('unauthorized');
    if (!roles.includes(principal.role)) throw new AppError('forbidden', `This needs the role ${roles.join(' or ')}.`);
    request.principal = principal;
  };
}

const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'unsupported_media_type',
  FST_ERR_CTP_BODY_TOO_LARGE: 'payload_too_large',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'invalid_json',
  FST_ERR_CTP_INVALID_JSON_BODY: 'invalid_json',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'bad_request',
  FST_ERR_MAX_PARAM_LENGTH: 'uri_too_long',
};

/** The one place where any thrown thing becomes a client-visible error. */
export function toAppError(error: unknown): AppError {
  if (isAppError(error)) return error;
  const e = error as Partial<FastifyError> & { validation?: unknown };
  if (e.validation) return new AppError('validation_failed', e.message, { details: e.validation });
  if (e.code && FASTIFY_CODES[e.code]) return new AppError(FASTIFY_CODES[e.code]!, undefined, { cause: error });
  if (error instanceof SyntaxError || (e.statusCode === 400 && /JSON/i.test(e.message ?? ''))) return new AppError('invalid_json', undefined, { cause: error });
  if (e.statusCode === 405) return new AppError('method_not_allowed');
  if (e.statusCode === 413) return new AppError('payload_too_large');
  if (e.statusCode === 415) return new AppError('unsupported_media_type');
  if (e.statusCode && e.statusCode >= 400 && e.statusCode < 500) return new AppError('bad_request', e.message, { cause: error });
  // A database or Redis that cannot be reached is the server's trouble, not the client's: 503, retry.
  if (isBackendUnavailable(error)) return new AppError('unavailable', undefined, { retryAfterS: 1, cause: error });
  return new AppError('internal', undefined, { cause: error });
}

function sendError(reply: FastifyReply, request: FastifyRequest, error: AppError, log: Logger) {
  if (error.status >= 500 && error.code !== 'overloaded' && error.code !== 'unavailable') log.error({ err: error.cause ?? error, reqId: request.id }, 'request failed');
  if (error.retryAfterS !== undefined) reply.header('retry-after', String(error.retryAfterS));
  const body: { error: { code: ErrorCode; message: string; details?: unknown } } = { error: { code: error.code, message: error.message } };
  if (error.details !== undefined && error.status < 500) body.error.details = error.details;
  return reply.code(error.status).type('application/json; charset=utf-8').send(body);
}

const UUID_ANY_CASE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Path ids are used in their one canonical spelling (lower case): an id is also a key towards
 * others (the provider's idempotency key), and `ABC…` and `abc…` must not name two things.
 */
function canonicalizeUuidParams(params: unknown): void {
  if (typeof params !== 'object' || params === null) return;
  const record = params as Record<string, unknown>;
  for (const [key, value] of Object.entries(record)) {
    if (typeof value === 'string' && UUID_ANY_CASE.test(value)) record[key] = value.toLowerCase();
  }
}
