import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { isIP } from 'node:net';

/**
 * The one configuration schema. Every setting comes from an environment variable, is validated at
 * start, and a bad or missing one stops the process with a message naming it.
 */
const Int = (def: number, min = 0, max = Number.MAX_SAFE_INTEGER) =>
  Type.Integer({ default: def, minimum: min, maximum: max });
/** A probability, 0..1. */
const Rate = (def = 0) => Type.Number({ default: def, minimum: 0, maximum: 1 });

export const ConfigSchema = Type.Object({
  NODE_ENV: Type.Union([Type.Literal('development'), Type.Literal('production'), Type.Literal('test')], { default: 'development' }),
  HOST: Type.String({ default: '127.0.0.1' }),
  PORT: Int(3000, 0, 65535),
  /** `flashsale worker`'s port for /health, /ready and /metrics (0: any free port). */
  WORKER_PORT: Int(3002, 0, 65535),
  /**
   * Behind a load balancer, which X-Forwarded-For entries to believe (per-address limits need the
   * client's): a hop count (`1`: the proxy in front appends the client's address; the last entry
   * counts), or the proxies' addresses/CIDRs, comma-separated (`10.0.0.0/8,192.168.1.7`; also
   * `loopback`, `linklocal`, `uniquelocal`). Unset, `false` or `0`: the TCP peer's address.
   * `true` is refused: it would believe whatever address a client writes (see trustedProxies).
   */
  TRUST_PROXY: Type.String({ default: '' }),
  LOG_LEVEL: Type.Union(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)), { default: 'info' }),
  /** `auto`: pretty (pino-pretty) when stdout is a terminal, JSON lines otherwise. */
  LOG_FORMAT: Type.Union([Type.Literal('auto'), Type.Literal('json'), Type.Literal('pretty')], { default: 'auto' }),
  /** Embedded PGlite data directory; `memory://` keeps it in memory (tests). */
  DATA_DIR: Type.String({ default: './data' }),
  /** When set, PostgreSQL replaces PGlite. */
  DATABASE_URL: Type.Optional(Type.String({ minLength: 1 })),
  DATABASE_POOL_SIZE: Int(10, 1, 200),
  /** When set, the admission gate lives in Redis (shared by every API process) instead of in memory. */
  REDIS_URL: Type.Optional(Type.String({ minLength: 1 })),
  /** `REDIS_URL` names a Redis Cluster: one or more seed nodes, comma-separated; the rest are discovered. */
  REDIS_CLUSTER: Type.Boolean({ default: false }),
  /** Prefix of every gate key in Redis (no braces: the hash tag is the sale item). */
  REDIS_KEY_PREFIX: Type.String({ pattern: '^[A-Za-z0-9:_-]{1,64}$', default: 'flashsale' }),
  /** When set, RabbitMQ replaces the in-process broker. */
  AMQP_URL: Type.Optional(Type.String({ minLength: 1 })),
  /** Unacknowledged messages a consumer holds at once. */
  AMQP_PREFETCH: Int(32, 1, 10_000),
  /** Prefix of every exchange and queue name. */
  AMQP_PREFIX: Type.String({ pattern: '^[A-Za-z0-9_:-]{1,60}$', default: 'flashsale' }),
  /** A publisher confirm not received within this is treated as unknown: the outbox republishes. */
  AMQP_CONFIRM_TIMEOUT_MS: Int(5000, 100, 600_000),
  JWT_SECRET: Type.String({ minLength: 16, default: 'dev-only-secret-change-me-please' }),
  JWT_TTL_S: Int(3600, 60, 30 * 86400),
  /** Group commit: flush after this many ms or this many requests, whichever first. */
  GROUP_COMMIT_MAX_WAIT_MS: Int(2, 0, 1000),
  GROUP_COMMIT_MAX_BATCH: Int(200, 1, 10000),
  /** Requests waiting for a commit beyond this are shed with 503. */
  GROUP_COMMIT_MAX_QUEUE: Int(5000, 1, 1_000_000),
  RATE_LIMIT_IP_MAX: Int(3000, 1),
  RATE_LIMIT_IP_WINDOW_MS: Int(10_000, 100),
  RATE_LIMIT_USER_MAX: Int(30, 1),
  RATE_LIMIT_USER_WINDOW_MS: Int(10_000, 100),
  /**
   * Failed logins per account (the email, known or not) per window, from any address; beyond it the
   * account answers 429 with Retry-After, even to the right password, until the window ends.
   */
  RATE_LIMIT_LOGIN_ACCOUNT_MAX: Int(5, 1),
  RATE_LIMIT_LOGIN_ACCOUNT_WINDOW_MS: Int(15 * 60_000, 1000),
  /** Login attempts (right or wrong) per client address per window: one address guessing at many accounts. */
  RATE_LIMIT_LOGIN_IP_MAX: Int(30, 1),
  RATE_LIMIT_LOGIN_IP_WINDOW_MS: Int(60_000, 1000),
  /** Registrations attempted per client address per window. */
  RATE_LIMIT_REGISTER_IP_MAX: Int(10, 1),
  RATE_LIMIT_REGISTER_IP_WINDOW_MS: Int(3_600_000, 1000),
  /** Live streams open at once per process, per route (`GET /v1/flash-sales/{id}/live`, `GET /v1/orders/{id}/live`: server-sent events); more answer 503. */
  LIVE_STREAMS_MAX: Int(2000, 0, 100_000),
  /** How often a watched sale's gate counters are read and a change pushed to its streams. */
  LIVE_INTERVAL_MS: Int(250, 50, 60_000),
  /** How often a process reads the status of every order it streams (`GET /v1/orders/{id}/live`, one query for all) and pushes a change. */
  LIVE_ORDER_INTERVAL_MS: Int(1000, 50, 60_000),
  /**
   * Origins the web pages are served from, comma-separated: the only places a payment's `returnUrl`
   * may send the buyer back to from the provider's hosted page.
   */
  WEB_ORIGINS: Type.String({ default: 'http://localhost:3000,http://127.0.0.1:3000' }),
  /** Shed load with 503 when the event loop lags more than this (0 disables). */
  MAX_EVENT_LOOP_DELAY_MS: Int(1000, 0),
  BROKER_POLL_MS: Int(200, 5, 60_000),
  BROKER_MAX_ATTEMPTS: Int(5, 1, 100),
  BROKER_BACKOFF_BASE_MS: Int(200, 1, 3_600_000),
  /** After the payment window, a second close check runs this much later; holds older than window + grace are audit violations. */
  PAYMENT_GRACE_S: Int(60, 0, 86400),
  /** The sweeper's period: it closes orders and cart holds whose deadline messages were lost. */
  SWEEPER_INTERVAL_MS: Int(5000, 100, 3_600_000),
  /**
   * Moves this process's clock forward by this many ms. For fault drills only (`flashsale chaos`
   * jumps the clock past every deadline with it); refused in production.
   */
  CLOCK_OFFSET_MS: Int(0, 0, 366 * 86_400_000),
  /**
   * How often a process running the payment component reconciles the database with the provider
   * (its intents, captures and refunds); 0 turns the periodic job off (`flashsale reconcile` still works).
   */
  RECONCILE_INTERVAL_MS: Int(60_000, 0, 86_400_000),
  /** How often an API process looks for sales other processes created (its warm catalog). */
  CATALOG_REFRESH_MS: Int(2000, 100, 3_600_000),
  /**
   * Ids looked up and not found are remembered for a second, so garbage ids cannot make every request
   * query the database; at most this many (the least recently used go first), since the ids are the
   * client's to choose.
   */
  CATALOG_NOT_FOUND_CACHE_MAX: Int(10_000, 1, 10_000_000),
  /** Seed a demo shop and sale on first start. */
  SEED_DEMO: Type.Boolean({ default: true }),
  BODY_LIMIT_BYTES: Int(64 * 1024, 1024, 10 * 1024 * 1024),
  /**
   * When set, GET /metrics requires `Authorization: Bearer <this token>` (401 otherwise): the metrics
   * show traffic, stock movements and queue depths. Unset, /metrics is open (keep it off the internet).
   */
  METRICS_TOKEN: Type.Optional(Type.String({ minLength: 16 })),

  // ---- mail (notifications) ----
  /** When set (`smtp://user:pass@host:587`, `smtps://…`), email goes out over SMTP; otherwise nodemailer's JSON transport keeps each message in memory. */
  SMTP_URL: Type.Optional(Type.String({ minLength: 1 })),
  /** The From header of every email. */
  MAIL_FROM: Type.String({ minLength: 3, default: 'flashsale <no-reply@flashsale.local>' }),

  // ---- SMS (notifications) ----
  /**
   * When set, SMS notices go to this provider over HTTP (`flashsale sms-sim`, or a provider speaking
   * its API: POST /v1/messages with an Idempotency-Key); otherwise they are kept in memory.
   */
  SMS_URL: Type.Optional(Type.String({ minLength: 1 })),
  /** API key for the SMS provider, sent as `Authorization: Bearer …` (the simulator requires it). */
  SMS_API_KEY: Type.String({ minLength: 8, default: 'sms_test_flashsale_dev_key' }),
  /** Client timeout per SMS request; a timeout leaves the notice pending and it is resent with the same key. */
  SMS_TIMEOUT_MS: Int(5000, 1, 600_000),
  /** The sender name or number shown on every SMS. */
  SMS_FROM: Type.String({ minLength: 1, maxLength: 15, default: 'flashsale' }),

  // ---- SMS provider simulator (`flashsale sms-sim`) ----
  SMS_SIM_PORT: Int(3002, 0, 65535),
  /** Knob defaults (changeable at runtime with POST /_sim/knobs): added latency, share of 503 answers, share of messages accepted but answered too late. */
  SMS_SIM_LATENCY_MS: Int(0, 0, 600_000),
  SMS_SIM_FAILURE_RATE: Rate(),
  SMS_SIM_TIMEOUT_RATE: Rate(),
  /** Seed of the simulator's random source. */
  SMS_SIM_SEED: Int(42, 0, 0xffff_ffff),

  // ---- payment gateway (the client the app uses) ----
  /** Base URL of the payment provider the app calls: the simulator, or a real provider. */
  PSP_URL: Type.String({ minLength: 1, default: 'http://127.0.0.1:3001' }),
  /** Client timeout per gateway call; a timeout is a retryable GatewayError. */
  PSP_TIMEOUT_MS: Int(5000, 1, 600_000),
  /** API key, sent as `Authorization: Bearer …` (the simulator requires it on /v1 and /_sim). */
  PSP_API_KEY: Type.String({ minLength: 8, default: 'sk_test_flashsale_dev_key' }),
  /** Webhook signing secret (HMAC-SHA256); a comma-separated list during rotation (sign with each, accept any). */
  PSP_WEBHOOK_SECRET: Type.String({ minLength: 16, default: 'whsec_flashsale_dev_only_secret' }),
  /** Webhooks whose signed timestamp is further than this from now are refused (replay window). */
  PSP_WEBHOOK_TOLERANCE_S: Int(300, 1, 86_400),

  // ---- payment gateway simulator (`flashsale psp`) ----
  PSP_PORT: Int(3001, 0, 65535),
  /** Where buyers reach the simulator: the hosted pay page links are built from it. */
  PSP_PUBLIC_URL: Type.String({ minLength: 1, default: 'http://127.0.0.1:3001' }),
  /** Where the simulator posts its webhook events. */
  PSP_WEBHOOK_URL: Type.String({ minLength: 1, default: 'http://127.0.0.1:3000/v1/payments/webhook' }),
  /** The simulator's journal directory; `memory://` keeps it in memory (tests). */
  PSP_DATA_DIR: Type.String({ default: './data/psp' }),
  /** Knob defaults (changeable at runtime with POST /_sim/knobs). */
  PSP_LATENCY_MS: Int(0, 0, 600_000),
  PSP_DECLINE_RATE: Rate(),
  PSP_TIMEOUT_RATE: Rate(),
  PSP_WEBHOOK_DROP_RATE: Rate(),
  PSP_WEBHOOK_DUPLICATE_RATE: Rate(),
  PSP_WEBHOOK_DELAY_MS: Int(0, 0, 3_600_000),
  PSP_WEBHOOK_REORDER: Type.Boolean({ default: false }),
  /** Seed of the simulator's random source (declines, drops, duplicates, timeouts). */
  PSP_SEED: Int(42, 0, 0xffff_ffff),
});

export type Config = Static<typeof ConfigSchema>;

export class ConfigError extends Error {
  override name = 'ConfigError';
}

const BOOLEAN_WORDS: Record<string, boolean> = { true: true, '1': true, yes: true, false: false, '0': false, no: false };

/** Reads the config from an environment-like record; throws ConfigError naming every bad variable. */
export function loadConfig(env: Record<string, string | undefined> = process.env, overrides: Partial<Config> = {}): Config {
  const raw: Record<string, unknown> = {};
  for (const [key, schema] of Object.entries(ConfigSchema.properties)) {
    const text = env[key];
    if (text === undefined || text === '') continue;
    const type = (schema as { type?: string; anyOf?: unknown[] }).type;
    if (type === 'integer') raw[key] = /^-?\d+$/.test(text.trim()) ? Number(text) : text;
    else if (type === 'number') raw[key] = /^-?(\d+\.?\d*|\.\d+)$/.test(text.trim()) ? Number(text) : text;
    else if (type === 'boolean') raw[key] = BOOLEAN_WORDS[text.trim().toLowerCase()] ?? text;
    else raw[key] = text;
  }
  Object.assign(raw, overrides);
  const withDefaults = Value.Default(ConfigSchema, raw);
  const errors = [...Value.Errors(ConfigSchema, withDefaults)];
  if (errors.length > 0) {
    const lines = errors.map((e) => `  ${e.path.slice(1) || '(root)'}=${JSON.stringify((withDefaults as Record<string, unknown>)[e.path.slice(1)])}: ${e.message}`);
    throw new ConfigError(`invalid configuration:\n${[...new Set(lines)].join('\n')}`);
  }
  const config = withDefaults as Config;
  refuseTrustingEveryProxy(config);
  refuseDevSecretsInProduction(config);
  return config;
}

/**
 * Whether a setting was given in the environment rather than left to its default — `start` points
 * its embedded simulator and the API at each other only where the operator said nothing.
 */
/**
 * The standard OpenTelemetry variables (OTEL_*), for the tracing SDK, which reads its settings from
 * them itself: they are not part of Config, whose keys are ours.
 */
export function otelEnvironment(env: Record<string, string | undefined> = process.env): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(env).filter(([key]) => key.startsWith('OTEL_')));
}

export function explicitlySet(key: keyof Config, env: Record<string, string | undefined> = process.env): boolean {
  return (env[key] ?? '') !== '';
}

/** What Fastify's `trustProxy` gets: nothing trusted, a hop count, or the trusted proxies' addresses. */
export type TrustedProxies = false | number | string[];

/** proxy-addr's names for address ranges, which Fastify accepts in a list. */
const RANGE_NAMES = ['loopback', 'linklocal', 'uniquelocal'];

/** An address, or a CIDR whose prefix is 1..32 (IPv4) or 1..128 (IPv6): `/0` would be everyone. */
function isTrustableProxy(entry: string): boolean {
  if (RANGE_NAMES.includes(entry)) return true;
  const [address = '', prefix, ...rest] = entry.split('/');
  const family = isIP(address);
  if (family === 0 || rest.length > 0) return false;
  if (prefix === undefined) return true;
  return /^\d{1,3}$/.test(prefix) && Number(prefix) >= 1 && Number(prefix) <= (family === 4 ? 32 : 128);
}

/**
 * TRUST_PROXY as Fastify takes it. Never `true`: trusting every hop makes the client's own first
 * X-Forwarded-For entry its address, and a client that writes a new one per request resets every
 * per-address limit. Throws a ConfigError for anything but a hop count or proxy addresses.
 */
export function trustedProxies(setting: string): TrustedProxies {
  const text = setting.trim();
  if (text === '' || /^(false|no|0)$/i.test(text)) return false;
  if (/^\d+$/.test(text)) return Number(text);
  const entries = text.split(',').map((e) => e.trim()).filter(Boolean);
  const bad = /^(true|yes|\*|all)$/i.test(text) ? entries : entries.filter((e) => !isTrustableProxy(e));
  if (bad.length === 0) return entries;
  throw new ConfigError(`invalid configuration:\n  TRUST_PROXY=${JSON.stringify(setting)}: give the number of proxies in front of flashsale (a hop count, e.g. 1) `
    + 'or their addresses/CIDRs, comma-separated (e.g. 10.0.0.0/8,192.168.1.7); trusting every hop (true, *, a /0 range) would let any client choose its address and reset the per-address limits');
}

function refuseTrustingEveryProxy(config: Config): void {
  trustedProxies(config.TRUST_PROXY);
}

/** The secrets with a built-in value: it makes `npm start` work out of the box, and it is published. */
const SECRETS = ['JWT_SECRET', 'PSP_API_KEY', 'PSP_WEBHOOK_SECRET'] as const;
type Secret = (typeof SECRETS)[number];
/** A setting whose built-in value is fit for the demo only. */
export type DevelopmentDefault = Secret | 'SEED_DEMO' | 'SMS_API_KEY';

/** The roles an operator deploys. `start` is not one: it is the embedded demo. */
export type ProductionRole = 'api' | 'worker' | 'psp' | 'sms-sim';

/**
 * What each deployed role must not run on: the secrets it uses, and demo seeding. The worker builds
 * the same system as the API (token service, gateway client) and shares its environment; the
 * simulator uses only the provider's two secrets and never seeds.
 */
const GUARDED: Record<ProductionRole, readonly DevelopmentDefault[]> = {
  api: [...SECRETS, 'SEED_DEMO', 'SMS_API_KEY'],
  worker: [...SECRETS, 'SEED_DEMO', 'SMS_API_KEY'],
  psp: ['PSP_API_KEY', 'PSP_WEBHOOK_SECRET'],
  'sms-sim': ['SMS_API_KEY'],
};

const WHAT_TO_SET: Record<DevelopmentDefault, string> = {
  JWT_SECRET: 'set a signing secret of your own, at least 16 characters (the built-in value is published: anyone could forge tokens)',
  PSP_API_KEY: 'set the payment provider\'s API key (the built-in value is published)',
  PSP_WEBHOOK_SECRET: 'set the webhook signing secret shared with the provider (the built-in value is published: anyone could forge a payment)',
  SEED_DEMO: 'set it to false (demo accounts have published passwords)',
  SMS_API_KEY: 'set the SMS provider\'s API key (the built-in value is published)',
};

/** The value a setting has when nothing sets it. */
function builtIn(key: DevelopmentDefault): unknown {
  return Value.Default(ConfigSchema.properties[key], undefined);
}

/**
 * The settings among `keys` still on their development value. Values are compared, so the published
 * value typed in by hand counts too; PSP_WEBHOOK_SECRET may list several secrets (rotation), and
 * none of them may be the published one.
 */
export function developmentDefaultsIn(config: Config, keys: readonly DevelopmentDefault[] = GUARDED.api, role?: ProductionRole): DevelopmentDefault[] {
  return keys.filter((key) => {
    if (key === 'SEED_DEMO') return config.SEED_DEMO;
    // The app sends the SMS key only to the provider SMS_URL names; the simulator checks it always.
    if (key === 'SMS_API_KEY' && role !== 'sms-sim' && !config.SMS_URL) return false;
    const values = key === 'PSP_WEBHOOK_SECRET' ? config[key].split(',') : [config[key]];
    return values.map((v) => v.trim()).includes(String(builtIn(key)));
  });
}

/**
 * The one decision of whether a deployed role may start: never on a published secret nor with demo
 * seeding, whatever NODE_ENV says. Throws a ConfigError naming each variable to set.
 */
export function refuseDevelopmentDefaults(config: Config, role: ProductionRole): void {
  const left = developmentDefaultsIn(config, GUARDED[role], role);
  if (left.length === 0) return;
  const lines = left.map((key) => `  ${key}: ${WHAT_TO_SET[key]}`);
  throw new ConfigError(`\`flashsale ${role}\` refuses to run on development defaults; set each of these:\n${lines.join('\n')}\n(only \`flashsale start\`, the embedded demo, runs on them)`);
}

/** In production every command is held to what the deployed roles are, and fault drills are off. */
function refuseDevSecretsInProduction(config: Config): void {
  if (config.NODE_ENV !== 'production') return;
  const problems = developmentDefaultsIn(config).map((key) => `  ${key}: must be set in production: ${WHAT_TO_SET[key]}`);
  if (config.CLOCK_OFFSET_MS !== 0) problems.push('  CLOCK_OFFSET_MS: must be 0 in production (it exists for fault drills)');
  if (problems.length > 0) throw new ConfigError(`invalid configuration:\n${problems.join('\n')}`);
}
