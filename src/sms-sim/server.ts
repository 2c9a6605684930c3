import { randomUUID, timingSafeEqual } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Config } from '../platform/config.ts';
import { createLogger, type Logger } from '../platform/logger.ts';

export type SmsSimConfig = Pick<Config, 'LOG_LEVEL' | 'SMS_API_KEY' | 'SMS_SIM_LATENCY_MS' | 'SMS_SIM_FAILURE_RATE' | 'SMS_SIM_TIMEOUT_RATE' | 'SMS_SIM_SEED'>;

/** Fault knobs, changeable at runtime (`POST /_sim/knobs`). */
export interface SmsKnobs {
  /** Added to every message request. */
  latencyMs: number;
  /** Share of requests answered 503 without taking the message. */
  failureRate: number;
  /** Share of requests whose message is taken but whose answer comes `timeoutDelayMs` late (past a client's timeout). */
  timeoutRate: number;
  timeoutDelayMs: number;
}

/** One text as the simulated provider keeps it. */
export interface SimMessage {
  id: string;
  to: string;
  from: string;
  text: string;
  idempotencyKey: string | null;
  createdAt: string;
}

export interface SmsSimOptions {
  config: SmsSimConfig;
  log?: Logger;
  random?: () => number;
}

export type SmsSimServer = FastifyInstance & { sim: { messages: SimMessage[]; knobs: SmsKnobs } };

/**
 * An SMS provider simulator, a real HTTP server (`flashsale sms-sim`): `POST /v1/messages` takes
 * `{ to, from, text }` with a bearer key and an optional `Idempotency-Key` (the same key answers the
 * same message, `idempotent-replayed: true`), `GET /v1/messages?to=` lists what was sent, and
 * `/_sim/knobs` reads or sets the fault knobs. It keeps messages in memory.
 */
export async function createSmsSimServer(options: SmsSimOptions): Promise<SmsSimServer> {
  const { config } = options;
  const log = options.log ?? createLogger(config);
  const random = options.random ?? seeded(config.SMS_SIM_SEED);
  const knobs: SmsKnobs = { latencyMs: config.SMS_SIM_LATENCY_MS, failureRate: config.SMS_SIM_FAILURE_RATE, timeoutRate: config.SMS_SIM_TIMEOUT_RATE, timeoutDelayMs: 30_000 };
  const messages: SimMessage[] = [];
  const byKey = new Map<string, SimMessage>();
  const closing = new AbortController();

  const app = Fastify({ loggerInstance: log as FastifyBaseLogger, bodyLimit: 64 * 1024, return503OnClosing: true });
  app.addHook('onClose', async () => closing.abort());
  app.addHook('onRequest', async (request, reply) => {
    if (!authorized(request.headers.authorization, config.SMS_API_KEY)) {
      return reply.code(401).send({ error: { code: 'unauthorized', message: 'A valid bearer API key is required.' } });
    }
  });

  app.post<{ Body: { to?: unknown; from?: unknown; text?: unknown } }>('/v1/messages', async (request, reply) => {
    const { to, from, text } = request.body ?? {};
    if (typeof to !== 'string' || !/^\+[1-9]\d{6,14}$/.test(to)) return reply.code(422).send({ error: { code: 'invalid_number', message: '`to` must be an E.164 number.' } });
    if (typeof text !== 'string' || text.length === 0 || text.length > 1600) return reply.code(422).send({ error: { code: 'invalid_text', message: '`text` must be 1–1600 characters.' } });
    const key = typeof request.headers['idempotency-key'] === 'string' ? request.headers['idempotency-key'] : null;
    if (knobs.latencyMs > 0) await pause(knobs.latencyMs, closing.signal);
    if (key && byKey.has(key)) return reply.header('idempotent-replayed', 'true').code(200).send(byKey.get(key));
    if (random() < knobs.failureRate) return reply.code(503).send({ error: { code: 'unavailable', message: 'Simulated provider failure; retry.' } });
    const message: SimMessage = { id: `sms_${randomUUID().replaceAll('-', '')}`, to, from: typeof from === 'string' ? from : 'unknown', text, idempotencyKey: key, createdAt: new Date().toISOString() };
    messages.push(message);
    if (key) byKey.set(key, message);
    // Taken, but answered too late: the client gives up and resends with the same key.
    if (random() < knobs.timeoutRate) await pause(knobs.timeoutDelayMs, closing.signal);
    return reply.code(201).send(message);
  });

  app.get<{ Querystring: { to?: string } }>('/v1/messages', async (request) => ({
    data: messages.filter((m) => !request.query.to || m.to === request.query.to),
  }));

  app.get('/_sim/knobs', async () => knobs);
  app.post<{ Body: Partial<SmsKnobs> }>('/_sim/knobs', async (request, reply) => {
    const changes = request.body ?? {};
    for (const [name, value] of Object.entries(changes)) {
      if (!(name in knobs) || typeof value !== 'number' || !Number.isFinite(value) || value < 0 || (name.endsWith('Rate') && value > 1)) {
        return reply.code(422).send({ error: { code: 'invalid_knob', message: `knob ${name} must be a number${name.endsWith('Rate') ? ' in [0, 1]' : ' ≥ 0'}` } });
      }
    }
    Object.assign(knobs, changes);
    return knobs;
  });
  app.post('/_sim/reset', async () => {
    messages.length = 0;
    byKey.clear();
    return { reset: true };
  });

  app.decorate('sim', { messages, knobs });
  return app as unknown as SmsSimServer;
}

function authorized(header: string | undefined, apiKey: string): boolean {
  const given = Buffer.from(header?.startsWith('Bearer ') ? header.slice(7) : '');
  const expected = Buffer.from(apiKey);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

async function pause(ms: number, signal: AbortSignal): Promise<void> {
  await sleep(ms, undefined, { signal }).catch(() => {});
}

/** mulberry32: a run with the same seed makes the same faults. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
