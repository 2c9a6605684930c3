import { createHash } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { RequestContext, Result } from './core.ts';
import { PspError } from './errors.ts';
import type { Params } from './params.ts';
import { recordAndSend, type Simulator } from './simulator.ts';
import type { Op } from './state.ts';

/** What one /v1 route does with the call's parameters: decide, and return the answer with its changes. */
export type Operation = (params: Params, ctx: RequestContext) => Result;

type RequestKnobs = { latencyMs?: number; timeoutRate?: number };

const KEY_PATTERN = /^[\x20-\x7e]{1,255}$/;

/** Every /v1 call: latency knob, Idempotency-Key, one journal batch, webhooks, timeout knob. */
export async function answerApiCall(sim: Simulator, request: FastifyRequest, reply: FastifyReply, run: Operation): Promise<unknown> {
  const once = requestKnobs(request.headers['x-sim-knobs']);
  await abortableSleep(once.latencyMs ?? sim.knobs.latencyMs, sim.closing);
  if (sim.closing.aborted) throw new PspError(503, 'api_error', 'The simulator is shutting down.');
  const params = paramsOf(request);
  const key = idempotencyKeyOf(request);
  const hash = requestHash(request, params);
  const result = replay(sim, key, hash, reply) ?? runAndCommit(sim, run, params, { requestId: request.id, idempotencyKey: key ?? null }, hash);
  await timeOutSometimes(sim, once);
  return reply.code(result.status).send(result.body);
}

/**
 * Per-request knobs: `X-Sim-Knobs: {"latencyMs": 2000, "timeoutRate": 1}` applies to that call
 * only (declines per request use the provider's test cards, e.g. `pm_card_chargeDeclined`).
 */
function requestKnobs(header: string | string[] | undefined): RequestKnobs {
  if (typeof header !== 'string') return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(header);
  } catch {
    throw new PspError(400, 'invalid_request_error', 'X-Sim-Knobs must be a JSON object.');
  }
  const { latencyMs, timeoutRate } = (parsed ?? {}) as Record<string, unknown>;
  const knobs: RequestKnobs = {};
  if (typeof latencyMs === 'number' && latencyMs >= 0 && latencyMs <= 600_000) knobs.latencyMs = latencyMs;
  if (typeof timeoutRate === 'number' && timeoutRate >= 0 && timeoutRate <= 1) knobs.timeoutRate = timeoutRate;
  return knobs;
}

function paramsOf(request: FastifyRequest): Params {
  const source: unknown = request.method === 'GET' ? request.query : request.body;
  if (source === undefined || source === null) return {};
  if (typeof source !== 'object' || Array.isArray(source)) throw new PspError(400, 'invalid_request_error', 'The request body must be an object of parameters.');
  return source as Params;
}

/** The `Idempotency-Key` of a POST (other methods change nothing, so theirs is ignored). */
function idempotencyKeyOf(request: FastifyRequest): string | undefined {
  const header = request.headers['idempotency-key'];
  const key = request.method === 'POST' && typeof header === 'string' ? header : undefined;
  if (key !== undefined && !KEY_PATTERN.test(key)) {
    throw new PspError(400, 'invalid_request_error', 'Idempotency-Key must be 1–255 printable ASCII characters.', 'idempotency_key_invalid');
  }
  return key;
}

/** What a replay must match: the same method, route, path parameters and parameters. */
function requestHash(request: FastifyRequest, params: Params): string {
  return createHash('sha256').update(JSON.stringify([request.method, request.routeOptions.url, request.params, params])).digest('base64url');
}

/** A key seen before answers what it answered then, marked `Idempotent-Replayed`; undefined when the key is new (or absent). */
function replay(sim: Simulator, key: string | undefined, hash: string, reply: FastifyReply): Result | undefined {
  const stored = key === undefined ? undefined : sim.store.idempotency.get(key);
  if (!stored) return undefined;
  if (stored.hash !== hash) {
    throw new PspError(400, 'idempotency_error', `Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '${key}' if you meant to execute a different request.`);
  }
  reply.header('idempotent-replayed', 'true');
  return { status: stored.status, body: stored.body, ops: [] };
}

/** Runs the operation; its changes and the key's stored answer are journaled in one batch, then its events sent. */
function runAndCommit(sim: Simulator, run: Operation, params: Params, ctx: RequestContext, hash: string): Result {
  const result = run(params, ctx);
  const ops: Op[] = [...result.ops];
  const key = ctx.idempotencyKey;
  if (key !== null) ops.push({ op: 'idempotency', key, response: { hash, status: result.status, body: result.body } });
  recordAndSend(sim, ops);
  return result;
}

/** The timeout knob, drawn after the call is handled. */
async function timeOutSometimes(sim: Simulator, once: RequestKnobs): Promise<void> {
  const timeoutRate = once.timeoutRate ?? sim.knobs.timeoutRate;
  if (timeoutRate > 0 && sim.random() < timeoutRate) {
    // Handled and durable, but the answer never arrives in time: the ambiguous case a client must survive.
    await abortableSleep(sim.knobs.timeoutMs, sim.closing);
    throw new PspError(504, 'api_error', 'The request timed out.');
  }
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
