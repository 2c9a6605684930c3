import { randomBytes } from 'node:crypto';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Config } from '../platform/config.ts';
import { createLogger, type Logger } from '../platform/logger.ts';
import { registerApiRoutes } from './api-routes.ts';
import { registerApiKeyCheck } from './auth.ts';
import { registerBodyParsers } from './body-parsers.ts';
import { registerSimulatorControls } from './controls.ts';
import { PspCore } from './core.ts';
import { registerHostedPage } from './hosted-routes.ts';
import { defaultKnobs, seededRandom, type PspKnobConfig } from './knobs.ts';
import { registerResponseShape, sendError, toPspError } from './responses.ts';
import type { Simulator } from './simulator.ts';
import { FileJournal, MemoryJournal, PspStore } from './state.ts';
import { WebhookDispatcher, type RetryPolicy } from './webhooks.ts';
import { createPspMetrics } from './metrics.ts';

export type PspConfig = PspKnobConfig & Pick<Config,
  'LOG_LEVEL' | 'LOG_FORMAT' | 'BODY_LIMIT_BYTES' | 'PSP_PUBLIC_URL' | 'PSP_API_KEY' | 'PSP_WEBHOOK_SECRET' | 'PSP_WEBHOOK_URL' | 'PSP_DATA_DIR' | 'PSP_SEED'>;

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

/**
 * A payment service provider simulator whose wire format follows Stripe's: form-encoded (or JSON)
 * requests with `Authorization: Bearer <key>`, `Idempotency-Key`, Stripe-shaped objects and errors,
 * signed webhooks — plus a hosted pay/decline page and fault-injection knobs (`/_sim/knobs`).
 */
export async function createPspServer(options: PspOptions): Promise<PspServer> {
  const { config } = options;
  const log = options.log ?? createLogger(config);
  const closing = new AbortController();
  let metrics: ReturnType<typeof createPspMetrics> | undefined;
  const sim = createSimulator(options, log, closing.signal, (delivered) => metrics?.webhookFinished(delivered));
  metrics = createPspMetrics(sim.store);

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
  registerApiRoutes(app, sim);
  registerHostedPage(app, sim);
  registerSimulatorControls(app, sim);
  metrics.register(app);
  app.get('/health', async () => ({ status: 'ok', intents: sim.store.intents.size, events: sim.store.events.length }));

  app.addHook('preClose', async () => {
    closing.abort();
    sim.dispatcher.close();
  });
  app.addHook('onClose', async () => sim.store.close());

  redeliverUnfinished(sim);
  return app;
}

/** The state (replayed from the journal), the operations on it and the webhook sender, all reading the same knobs. */
function createSimulator(options: PspOptions, log: Logger, closing: AbortSignal, webhookFinished: (delivered: boolean) => void): Simulator {
  const { config } = options;
  const now = options.now ?? Date.now;
  const random = options.random ?? seededRandom(config.PSP_SEED);
  const secrets = config.PSP_WEBHOOK_SECRET.split(',').map((s) => s.trim()).filter(Boolean);
  const store = new PspStore(config.PSP_DATA_DIR === MEMORY ? new MemoryJournal() : new FileJournal(config.PSP_DATA_DIR));
  const publicUrl = options.publicUrl ?? (() => config.PSP_PUBLIC_URL);
  const sim: Simulator = {
    store, log, random, publicUrl, closing,
    knobs: defaultKnobs(config),
    core: new PspCore({ store, knobs: () => sim.knobs, random, now, publicUrl }),
    dispatcher: new WebhookDispatcher({
      url: config.PSP_WEBHOOK_URL,
      secrets,
      now,
      knobs: () => sim.knobs,
      retry: { attempts: 8, baseMs: 1000, maxMs: 60_000, ...options.webhookRetry },
      attemptTimeoutMs: options.webhookAttemptTimeoutMs ?? 10_000,
      log,
      onOutcome: (eventId, outcome) => {
        webhookFinished(outcome.delivered);
        store.record([{ op: 'delivery', eventId, ...outcome }]);
      },
    }),
  };
  return sim;
}

/** Deliveries a previous run planned but did not finish go out again (at-least-once, like a provider). */
function redeliverUnfinished(sim: Simulator): void {
  for (const event of sim.store.events) {
    const pending = sim.store.pendingCopies(event.id);
    if (pending > 0) sim.dispatcher.schedule(event, pending);
  }
}
