import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import amqp from 'amqplib';
import { Redis } from 'ioredis';
import pg from 'pg';
import { buildSystem } from '../src/app.ts';
import { freePort, startCliProcess, stopProcess, type CliProcess } from '../src/cli/child.ts';
import { loadConfig } from '../src/platform/config.ts';
import { deleteKeysUnder } from '../src/platform/redis.ts';
import { RabbitMqBroker } from '../src/platform/broker/rabbitmq.ts';
import { deleteTopologies, type Topology } from '../src/platform/broker/rabbitmq/topology.ts';
import { TokenService } from '../src/platform/tokens.ts';
import type { Baseline, BaselineAudit, BaselineEnv, BenchItem } from './baselines/baseline.ts';
import type { TargetFacts } from './summary.ts';

/** Where the engines are; the distributed runs and the baselines get a fresh database, prefix and queues each. */
export interface Engines {
  postgresUrl: string;
  redisUrl: string;
  amqpUrl: string;
}

export type Engine = 'postgres' | 'redis' | 'rabbitmq';

/** The engines on this machine as the project's services run them (see docs/operations.md). */
const LOCAL_ENGINES: Engines = { postgresUrl: 'postgres://postgres@127.0.0.1:5432/postgres', redisUrl: 'redis://127.0.0.1:6379', amqpUrl: 'amqp://guest:guest@127.0.0.1:5672' };

/** Where the engines are: the command's flags, else the usual environment variables, else this machine's services. */
export function enginesFrom(flags: { postgres?: string; redis?: string; amqp?: string }, env: Record<string, string | undefined> = process.env): Engines {
  return {
    postgresUrl: flags.postgres ?? env.DATABASE_URL ?? LOCAL_ENGINES.postgresUrl,
    redisUrl: flags.redis ?? env.REDIS_URL ?? LOCAL_ENGINES.redisUrl,
    amqpUrl: flags.amqp ?? env.AMQP_URL ?? LOCAL_ENGINES.amqpUrl,
  };
}

/** One process of ours behind a target: the bench reads its peak RSS and its probe (bench/probe.ts). */
export interface TargetProcess {
  /** `start`, `api`, `worker`, or `serve` (bench/serve.ts: the ceiling or a baseline). */
  name: string;
  pid: number | undefined;
  /** Where its bench/probe.ts listens. */
  probePort: number;
}

/** Work a target has accepted but not finished: flashsale's events not yet handled. */
export interface Backlog {
  /** Outbox rows due but not yet relayed to the broker. */
  outbox: number;
  /** Messages waiting for a consumer (embedded: pending deliveries; RabbitMQ: ready in the consumers' work and retry queues). */
  deliveries: number;
}

/** The quiet audit's verdict: every invariant holds with no traffic in flight, every event delivered, every notice sent. */
export interface QuietVerdict {
  clean: boolean;
  /** Why not, one line each (empty when clean). */
  problems: string[];
}

/** A server under load, in its own process(es), with the sale's items created. */
export interface RunningTarget {
  url: string;
  /** Sale item ids, in the order of the plan's items. */
  itemIds: string[];
  /** Its processes; the first is the one buyers talk to (its figures are the run's). */
  processes: TargetProcess[];
  /** Call right before the load starts: counters are read from here. */
  markStart(): Promise<void>;
  /** Orders the target has written to its database so far (the rush's finish line). */
  durableOrders(): Promise<number>;
  /** flashsale only: its event backlog right now. */
  backlog?(): Promise<Backlog>;
  /** flashsale only: the quiet audit (`GET /v1/admin/audit?quiet=true`, plus what the API cannot see). */
  quietAudit?(): Promise<QuietVerdict>;
  /** Waits for queued work, audits, reads the figures, stops the process and removes its data. */
  finish(): Promise<TargetFacts>;
  /** Stops and cleans up without figures (after a failure). */
  abort(): Promise<void>;
}

export interface ItemSpec {
  stock: number;
  perUserLimit: number;
}

const SERVE = fileURLToPath(new URL('./serve.ts', import.meta.url));
const PROBE = fileURLToPath(new URL('./probe.ts', import.meta.url));

/** Node flags and environment that load bench/probe.ts into a target process, listening on `port`. */
function withProbe(nodeArgs: readonly string[], port: number): { nodeArgs: string[]; env: Record<string, string> } {
  return { nodeArgs: [...nodeArgs, '--import', PROBE], env: { FLASHSALE_BENCH_PROBE_PORT: String(port) } };
}

/** Event-loop delay over a window, as bench/probe.ts reports it (the timer's own period subtracted). */
export interface EventLoopDelay {
  p50_ms: number;
  p99_ms: number;
  max_ms: number;
  samples: number;
}

/** Starts a new event-loop delay window in the process. */
export async function resetProbe(p: TargetProcess): Promise<void> {
  const response = await fetch(`http://127.0.0.1:${p.probePort}/reset`, { method: 'POST' });
  if (response.status !== 204) throw new Error(`the probe of ${p.name} answered ${response.status} to a reset`);
}

/** The process's event-loop delay since the last reset. */
export async function readProbe(p: TargetProcess): Promise<EventLoopDelay> {
  const response = await fetch(`http://127.0.0.1:${p.probePort}/`);
  if (response.status !== 200) throw new Error(`the probe of ${p.name} answered ${response.status}`);
  return (await response.json()) as EventLoopDelay;
}

/**
 * The bench's own connection to a run's database, for polling it (orders written, the outbox). Its
 * statements are counted, so they can be taken out of the run's transaction count.
 */
interface BenchReader {
  query<R extends pg.QueryResultRow>(sql: string, params?: unknown[]): Promise<R[]>;
  /** Statements sent so far (each one a transaction of its own). */
  readonly statements: number;
  end(): Promise<void>;
}

function benchReader(url: string): BenchReader {
  const pool = new pg.Pool({ connectionString: url, max: 1 });
  pool.on('error', () => {});
  let statements = 0;
  return {
    async query<R extends pg.QueryResultRow>(sql: string, params: unknown[] = []) {
      statements++;
      return (await pool.query<R>(sql, params)).rows;
    },
    get statements() {
      return statements;
    },
    end: () => pool.end(),
  };
}

/** Which engines answer, each within a second or two; a missing one skips the runs that need it. */
export async function reachableEngines(engines: Engines): Promise<Set<Engine>> {
  const found = new Set<Engine>();
  const checks: Array<[Engine, () => Promise<void>]> = [
    ['postgres', async () => {
      const client = new pg.Client({ connectionString: engines.postgresUrl, connectionTimeoutMillis: 2000 });
      await client.connect();
      await client.end();
    }],
    ['redis', async () => {
      const client = new Redis(engines.redisUrl, { lazyConnect: true, connectTimeout: 2000, maxRetriesPerRequest: 0, retryStrategy: () => null });
      client.on('error', () => {});
      try {
        await client.connect();
        await client.ping();
      } finally {
        client.disconnect();
      }
    }],
    ['rabbitmq', async () => {
      const connection = await amqp.connect(engines.amqpUrl, { timeout: 2000 });
      await connection.close();
    }],
  ];
  await Promise.all(checks.map(async ([engine, check]) => check().then(() => found.add(engine), () => {})));
  return found;
}

/**
 * CPU time a process has used so far (user + system, every thread; /proc/<pid>/stat, Linux), in ms;
 * null elsewhere. Read around the load, it gives CPU per attempt: unlike attempts/s, hardly moved
 * by whatever else the machine is running.
 */
export async function cpuMs(pid: number | undefined): Promise<number | null> {
  if (pid === undefined) return null;
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS_PER_S;
  } catch {
    return null;
  }
}

/** USER_HZ: 100 on every Linux this runs on (getconf CLK_TCK). */
const CLOCK_TICKS_PER_S = 100;

/** Peak resident memory of a process since it started (VmHWM, from /proc: Linux); null elsewhere. */
export async function peakRssMb(pid: number | undefined): Promise<number | null> {
  if (pid === undefined) return null;
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const kb = /VmHWM:\s+(\d+) kB/.exec(status)?.[1];
    return kb ? Math.round(Number(kb) / 1024) : null;
  } catch {
    return null;
  }
}

function databaseUrl(base: string, name: string): string {
  const url = new URL(base);
  url.pathname = `/${name}`;
  return url.toString();
}

/** A database of the run's own, so its transaction count (pg_stat_database) is the run's alone. */
export async function createDatabase(engines: Engines, name: string): Promise<{ url: string; drop(): Promise<void>; committed(): Promise<number> }> {
  const admin = new pg.Client({ connectionString: engines.postgresUrl });
  await admin.connect();
  await admin.query(`create database ${name}`);
  await admin.end();
  const adminQuery = async <R extends pg.QueryResultRow>(sql: string, params: unknown[] = []) => {
    const client = new pg.Client({ connectionString: engines.postgresUrl });
    await client.connect();
    try {
      return (await client.query<R>(sql, params)).rows;
    } finally {
      await client.end();
    }
  };
  return {
    url: databaseUrl(engines.postgresUrl, name),
    drop: async () => void (await adminQuery(`drop database if exists ${name} with (force)`)),
    committed: async () => Number((await adminQuery<{ n: string }>('select xact_commit::text as n from pg_stat_database where datname = $1', [name]))[0]?.n ?? 0),
  };
}

export async function deleteRedisKeys(url: string, prefix: string): Promise<void> {
  const client = new Redis(url, { maxRetriesPerRequest: 1 });
  try {
    await deleteKeysUnder(client, prefix);
  } finally {
    client.disconnect();
  }
}

interface ServeProcess {
  child: ChildProcess;
  url: string;
  probePort: number;
}

/** `bench/serve.ts` as a child process: the ceiling or one baseline, with the probe loaded. */
async function startServe(target: string, config: { env: BaselineEnv; items: BenchItem[] }, nodeArgs: readonly string[]): Promise<ServeProcess & { dir: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'flashsale-bench-'));
  const file = join(dir, 'config.json');
  await writeFile(file, JSON.stringify(config));
  const probePort = await freePort();
  const probe = withProbe(nodeArgs, probePort);
  const child = spawn(process.execPath, [...probe.nodeArgs, SERVE, '--target', target, '--port', '0', '--config', file], {
    env: { ...process.env, ...probe.env }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      output += d.toString();
      const match = /READY (\d+)/.exec(output);
      if (match) resolve(Number(match[1]));
    });
    child.once('exit', (code) => reject(new Error(`bench/serve.ts --target ${target} exited (${code}) during start:\n${output}`)));
  });
  return { child, url: `http://127.0.0.1:${port}`, probePort, dir };
}

async function stopServe(p: ServeProcess): Promise<void> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return;
  const exited = once(p.child, 'exit');
  p.child.kill('SIGTERM');
  const timer = setTimeout(() => p.child.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(timer);
}

const serveProcess = (serve: ServeProcess): TargetProcess => ({ name: 'serve', pid: serve.child.pid, probePort: serve.probePort });

/** The bare route: Fastify answering 409 and doing nothing else. */
export async function startCeiling(items: readonly ItemSpec[], nodeArgs: readonly string[] = []): Promise<RunningTarget> {
  const itemIds = items.map(() => randomUUID());
  const env: BaselineEnv = { databaseUrl: '', redisUrl: '', amqpUrl: '', jwtSecret: 'unused-by-the-ceiling', namespace: 'ceiling' };
  const serve = await startServe('ceiling', { env, items: items.map((s, i) => ({ id: itemIds[i]!, ...s })) }, nodeArgs);
  const stop = async () => {
    await stopServe(serve);
    await rm(serve.dir, { recursive: true, force: true });
  };
  return {
    url: serve.url, itemIds, processes: [serveProcess(serve)],
    markStart: async () => {},
    durableOrders: async () => 0, // it writes nothing
    async finish() {
      await stop();
      return { oversold: 0, unitsSold: 0, dbTransactions: null, auditOk: true, auditProblems: [] };
    },
    abort: stop,
  };
}

/** One of the seeds' approaches, on a database (and keys, queues) of its own. */
export async function startBaseline(baseline: Baseline, engines: Engines, items: readonly ItemSpec[], jwtSecret: string, nodeArgs: readonly string[] = []): Promise<RunningTarget> {
  const namespace = `fsbench_${randomBytes(6).toString('hex')}`;
  const database = await createDatabase(engines, namespace);
  const env: BaselineEnv = { databaseUrl: database.url, redisUrl: engines.redisUrl, amqpUrl: engines.amqpUrl, jwtSecret, namespace };
  const itemIds = items.map(() => randomUUID());
  const reader = benchReader(database.url);
  let serve: (ServeProcess & { dir: string }) | undefined;
  const cleanUp = async () => {
    if (serve) {
      await stopServe(serve);
      await rm(serve.dir, { recursive: true, force: true });
    }
    await reader.end().catch(() => {});
    await database.drop();
  };
  try {
    serve = await startServe(baseline.name, { env, items: items.map((s, i) => ({ id: itemIds[i]!, ...s })) }, nodeArgs);
  } catch (error) {
    await cleanUp();
    throw error;
  }
  const running = serve;
  let ownStatements = 0;
  return {
    url: running.url, itemIds, processes: [serveProcess(running)],
    markStart: async () => void (ownStatements = reader.statements),
    // What its audit counts (bench/baselines/sql.ts), read by the bench from the baseline's database:
    // redis-prededuct answers before its consumer writes, the others write before they answer.
    durableOrders: async () => (await reader.query<{ n: number }>(`select count(*)::int as n from ${namespace}.orders`))[0]?.n ?? 0,
    async finish() {
      await fetch(`${running.url}/__bench/settle`, { method: 'POST' });
      const audit = (await (await fetch(`${running.url}/__bench/audit`)).json()) as BaselineAudit;
      await stopServe(running); // its backends exit and flush their statistics
      await reader.end();
      // The bench's own polling went to this database too: each statement was a transaction.
      const committed = (await database.committed()) - (reader.statements - ownStatements);
      await cleanUp();
      return {
        oversold: audit.oversold, unitsSold: audit.units, dbTransactions: committed,
        auditOk: audit.oversold === 0, auditProblems: audit.oversold === 0 ? [] : [`${audit.oversold} units oversold`],
      };
    },
    abort: cleanUp,
  };
}

const BENCH_SECRET_BYTES = 24;

/** A bench-only JWT secret shared by the bench (which mints buyers' tokens) and the target. */
export function benchSecret(): string {
  return `bench-${randomBytes(BENCH_SECRET_BYTES).toString('hex')}`;
}

/**
 * The secrets of one flashsale deployment, random each time: `api`, `worker` and `psp` refuse the
 * published development defaults (and SEED_DEMO=true) whatever NODE_ENV says.
 */
function deploymentSecrets(jwtSecret: string): Record<string, string> {
  return {
    JWT_SECRET: jwtSecret,
    PSP_API_KEY: `sk_test_bench_${randomBytes(16).toString('hex')}`,
    PSP_WEBHOOK_SECRET: `whsec_bench_${randomBytes(24).toString('hex')}`,
    SEED_DEMO: 'false',
  };
}

interface FlashsaleSale {
  itemIds: string[];
  saleId: string;
  /** The sale's merchant (sale management: edit, cancel, add stock). */
  merchantToken: string;
}

/** Creates a merchant, its products and a running flash sale over the API, as a merchant would (the bench and the multi-process tests). */
export async function createSale(url: string, tokens: TokenService, items: readonly ItemSpec[], paymentWindowS: number): Promise<FlashsaleSale> {
  const call = async (path: string, body: unknown, token?: string) => {
    const response = await fetch(`${url}${path}`, {
      method: 'POST', body: JSON.stringify(body),
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    });
    const json = (await response.json()) as Record<string, unknown>;
    if (response.status >= 300) throw new Error(`POST ${path} answered ${response.status}: ${JSON.stringify(json)}`);
    return json;
  };
  const admin = tokens.issue({ userId: randomUUID(), role: 'admin' });
  const email = `bench-${randomUUID()}@bench.local`;
  await call('/v1/admin/merchants', { email, password: 'bench-merchant-password', shopName: 'Bench shop' }, admin);
  const merchant = String((await call('/v1/auth/login', { email, password: 'bench-merchant-password' })).token);
  const products: string[] = [];
  for (const [i] of items.entries()) products.push(String((await call('/v1/products', { name: `Bench item ${i + 1}`, price: 10_000, currency: 'USD' }, merchant)).id));
  const now = Date.now();
  const sale = await call('/v1/flash-sales', {
    name: 'Bench flash sale', startsAt: new Date(now - 1000).toISOString(), endsAt: new Date(now + 6 * 3600_000).toISOString(), paymentWindowS,
    items: items.map((spec, i) => ({ productId: products[i], flashPrice: 5_000, stock: spec.stock, perUserLimit: spec.perUserLimit })),
  }, merchant);
  return { itemIds: (sale.items as Array<{ id: string }>).map((item) => item.id), saleId: String(sale.id), merchantToken: merchant };
}

/** A sample value of flashsale's /metrics text (0 when absent). */
function metricValue(text: string, name: string): number {
  const value = new RegExp(`^${name} (\\d+(?:\\.\\d+)?(?:e[+-]?\\d+)?)`, 'm').exec(text)?.[1];
  return Number(value ?? 0);
}

const metricsText = async (url: string) => (await fetch(`${url}/metrics`)).text();
const metric = async (url: string, name: string) => metricValue(await metricsText(url), name);
const committedTransactions = (url: string) => metric(url, 'flashsale_db_transactions_committed');

async function groupCommit(url: string): Promise<{ batches: number; attemptsPerBatch: number }> {
  const text = await metricsText(url);
  const batches = metricValue(text, 'flashsale_group_commit_batch_size_count');
  const attempts = metricValue(text, 'flashsale_group_commit_batch_size_sum');
  return { batches, attemptsPerBatch: batches > 0 ? Math.round((attempts / batches) * 10) / 10 : 0 };
}

interface AuditBody {
  ok: boolean;
  oversoldUnits: number;
  stock: { held: number; sold: number };
  violations: Array<{ check: string; message: string }>;
}

/** flashsale's audit, as an operator asks for it (a fresh admin each time: the per-user limit is not for polling). */
async function flashsaleAudit(url: string, tokens: TokenService, quiet: boolean): Promise<{ body: AuditBody | undefined; verdict: QuietVerdict }> {
  const admin = tokens.issue({ userId: randomUUID(), role: 'admin' });
  const response = await fetch(`${url}/v1/admin/audit?quiet=${quiet}`, { headers: { authorization: `Bearer ${admin}` } });
  const text = await response.text();
  if (response.status !== 200 && response.status !== 409) return { body: undefined, verdict: { clean: false, problems: [`the audit answered ${response.status}: ${text.slice(0, 300)}`] } };
  const body = JSON.parse(text) as AuditBody;
  return { body, verdict: { clean: response.status === 200 && body.ok, problems: body.violations.map((v) => `${v.check}: ${v.message}`) } };
}

export interface FlashsaleOptions {
  mode: 'embedded' | 'distributed';
  engines: Engines;
  items: readonly ItemSpec[];
  jwtSecret: string;
  paymentWindowS?: number;
  /** Extra Node.js flags for the processes (`--cpu-prof`). */
  nodeArgs?: readonly string[];
}

export interface RunningFlashsale extends RunningTarget {
  tokens: TokenService;
}

/**
 * flashsale as an operator starts it, with a sale created through the API: embedded, `flashsale
 * start` on a fresh data directory (every role and the payment simulator in one process);
 * distributed, `flashsale psp`, `flashsale api` and `flashsale worker` as three processes on
 * PostgreSQL + Redis + RabbitMQ with a database, key prefix and queue prefix of their own.
 */
export function startFlashsale(options: FlashsaleOptions): Promise<RunningFlashsale> {
  return options.mode === 'embedded' ? startEmbedded(options) : startDistributed(options);
}

/** Every virtual buyer comes from this one address: the per-IP limit would measure itself. */
const ONE_ADDRESS = { RATE_LIMIT_IP_MAX: '1000000000' };

async function startEmbedded(options: FlashsaleOptions): Promise<RunningFlashsale> {
  const dataDir = await mkdtemp(join(tmpdir(), 'flashsale-bench-data-'));
  const [port, pspPort, probePort] = [await freePort(), await freePort(), await freePort()];
  const env: Record<string, string> = {
    PORT: String(port), PSP_PORT: String(pspPort), DATA_DIR: dataDir, PSP_DATA_DIR: join(dataDir, 'psp'),
    PSP_WEBHOOK_URL: `http://127.0.0.1:${port}/v1/payments/webhook`,
    ...deploymentSecrets(options.jwtSecret), LOG_LEVEL: 'warn', ...ONE_ADDRESS,
  };
  const cleanUp = () => rm(dataDir, { recursive: true, force: true });
  const probe = withProbe(options.nodeArgs ?? [], probePort);
  let child: CliProcess;
  try {
    child = await startCliProcess(['start'], { ...env, ...probe.env }, { ready: { http: `http://127.0.0.1:${port}/ready` }, url: `http://127.0.0.1:${port}`, timeoutMs: 90_000, nodeArgs: probe.nodeArgs });
  } catch (error) {
    await cleanUp();
    throw error;
  }
  const tokens = new TokenService(options.jwtSecret, 6 * 3600);
  let sale: FlashsaleSale;
  try {
    sale = await createSale(child.url, tokens, options.items, options.paymentWindowS ?? 900);
  } catch (error) {
    await stopProcess(child);
    await cleanUp();
    throw error;
  }
  const url = child.url;
  let before = 0;
  return {
    url, itemIds: sale.itemIds, tokens, processes: [{ name: 'start', pid: child.child.pid, probePort }],
    markStart: async () => void (before = await committedTransactions(url)),
    // PGlite belongs to the process: its own count of units held by committed purchase transactions
    // (each purchase answers only after its commit; one unit per order in the rush).
    durableOrders: () => metric(url, 'flashsale_holds_created_total'),
    async backlog() {
      const text = await metricsText(url);
      return { outbox: metricValue(text, 'flashsale_outbox_pending'), deliveries: metricValue(text, 'flashsale_deliveries_pending') };
    },
    quietAudit: async () => (await flashsaleAudit(url, tokens, true)).verdict,
    async finish() {
      const after = await committedTransactions(url);
      const batches = await groupCommit(url);
      const { body, verdict } = await flashsaleAudit(url, tokens, false);
      await stopProcess(child, 30_000);
      await cleanUp();
      if (!body) throw new Error(verdict.problems.join('; '));
      return {
        oversold: body.oversoldUnits, unitsSold: body.stock.held + body.stock.sold, dbTransactions: after - before, groupCommit: batches,
        auditOk: verdict.clean, auditProblems: verdict.problems,
      };
    },
    async abort() {
      await stopProcess(child, 10_000);
      await cleanUp();
    },
  };
}

async function startDistributed(options: FlashsaleOptions): Promise<RunningFlashsale> {
  const namespace = `fsbench_${randomBytes(6).toString('hex')}`;
  const dataDir = await mkdtemp(join(tmpdir(), 'flashsale-bench-data-'));
  const database = await createDatabase(options.engines, namespace);
  const [apiPort, pspPort, apiProbe, workerProbe] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const url = `http://127.0.0.1:${apiPort}`;
  const pspUrl = `http://127.0.0.1:${pspPort}`;
  const env: Record<string, string> = {
    DATABASE_URL: database.url, REDIS_URL: options.engines.redisUrl, REDIS_KEY_PREFIX: namespace,
    AMQP_URL: options.engines.amqpUrl, AMQP_PREFIX: namespace,
    PORT: String(apiPort), PSP_URL: pspUrl, PSP_PORT: String(pspPort), PSP_PUBLIC_URL: pspUrl, PSP_DATA_DIR: join(dataDir, 'psp'),
    PSP_WEBHOOK_URL: `${url}/v1/payments/webhook`,
    ...deploymentSecrets(options.jwtSecret), LOG_LEVEL: 'warn', ...ONE_ADDRESS,
  };
  const children: CliProcess[] = [];
  let topology: Topology | undefined;
  let reader: BenchReader | undefined;
  let rabbit: { connection: amqp.ChannelModel; channel: amqp.Channel } | undefined;
  const closeReaders = async () => {
    await reader?.end().catch(() => {});
    await rabbit?.connection.close().catch(() => {});
    reader = undefined;
    rabbit = undefined;
  };
  const stopAll = async () => {
    // The API first (no new work), then the worker, then the simulator.
    for (const role of ['api', 'worker', 'psp']) {
      const child = children.find((c) => c.name === role);
      if (child) await stopProcess(child, 30_000);
    }
  };
  const cleanUp = async () => {
    await stopAll();
    await closeReaders();
    await deleteTopologyQueues(env.AMQP_URL!, topology ?? (await rabbitTopology(env).catch(() => undefined))).catch(() => {});
    await deleteRedisKeys(options.engines.redisUrl, `${namespace}:`).catch(() => {});
    await database.drop().catch(() => {});
    await rm(dataDir, { recursive: true, force: true });
  };
  const nodeArgs = options.nodeArgs ?? [];
  const apiWithProbe = withProbe(nodeArgs, apiProbe);
  const workerWithProbe = withProbe(nodeArgs, workerProbe);
  const tokens = new TokenService(options.jwtSecret, 6 * 3600);
  let sale: FlashsaleSale;
  try {
    children.push(await startCliProcess(['psp'], env, { ready: { http: `${pspUrl}/health` }, url: pspUrl, timeoutMs: 90_000, nodeArgs }));
    // The API migrates the database; the worker starts once it has. `worker is up` is logged at info.
    children.push(await startCliProcess(['api'], { ...env, ...apiWithProbe.env }, { ready: { http: `${url}/ready` }, url, timeoutMs: 90_000, nodeArgs: apiWithProbe.nodeArgs }));
    children.push(await startCliProcess(['worker'], { ...env, ...workerWithProbe.env, LOG_LEVEL: 'info' }, { ready: { log: 'worker is up' }, timeoutMs: 90_000, nodeArgs: workerWithProbe.nodeArgs }));
    topology = await rabbitTopology(env);
    reader = benchReader(database.url);
    const connection = await amqp.connect(env.AMQP_URL!, { noDelay: true });
    connection.on('error', () => {});
    const channel = await connection.createChannel();
    channel.on('error', () => {});
    rabbit = { connection, channel };
    sale = await createSale(url, tokens, options.items, options.paymentWindowS ?? 900);
  } catch (error) {
    await cleanUp();
    throw error;
  }
  const [api, worker] = [children[1]!, children[2]!];
  const db = reader;
  const queues = topology?.queues ?? [];
  // Work and retry queues: what waits for a consumer (dead-letter queues are the audit's business).
  const waiting = queues.filter((q) => !q.name.endsWith('.dlq')).map((q) => q.name);
  let before = 0;
  let ownStatements = 0;
  return {
    url, itemIds: sale.itemIds, tokens,
    processes: [{ name: 'api', pid: api.child.pid, probePort: apiProbe }, { name: 'worker', pid: worker.child.pid, probePort: workerProbe }],
    async markStart() {
      before = await database.committed();
      ownStatements = db.statements;
    },
    durableOrders: async () => (await db.query<{ n: number }>('select count(*)::int as n from orders'))[0]?.n ?? 0,
    async backlog() {
      const [row] = await db.query<{ n: number }>('select count(*)::int as n from outbox where published_at is null and deliver_after <= now()');
      let deliveries = 0;
      for (const queue of waiting) deliveries += (await rabbit!.channel.checkQueue(queue)).messageCount;
      return { outbox: row?.n ?? 0, deliveries };
    },
    async quietAudit() {
      const { verdict } = await flashsaleAudit(url, tokens, true);
      // The API consumes nothing, so its audit sees no queue: what the workers have yet to handle
      // is read from the database, and so are the notices not yet sent.
      const unhandled = await unhandledDeliveries(db, topology!, namespace);
      const [notices] = await db.query<{ n: number }>(`select count(*)::int as n from notifications where status = 'pending'`);
      const problems = [
        ...verdict.problems,
        ...Object.entries(unhandled).filter(([, n]) => n > 0).map(([consumer, n]) => `events_delivered: ${n} events not yet handled by ${consumer}`),
        ...((notices?.n ?? 0) > 0 ? [`notices_sent: ${notices!.n} notifications pending`] : []),
      ];
      return { clean: verdict.clean && problems.length === 0, problems };
    },
    async finish() {
      const batches = await groupCommit(url);
      const { body, verdict } = await flashsaleAudit(url, tokens, false);
      const statements = db.statements - ownStatements;
      await stopAll();
      await closeReaders();
      // Every process's transactions, consumers included, as for the baselines (pg_stat_database,
      // read once their backends have exited), less the bench's own polling.
      const committed = (await database.committed()) - before - statements;
      await cleanUp();
      if (!body) throw new Error(verdict.problems.join('; '));
      return {
        oversold: body.oversoldUnits, unitsSold: body.stock.held + body.stock.sold, dbTransactions: committed, groupCommit: batches,
        auditOk: verdict.clean, auditProblems: verdict.problems,
      };
    },
    abort: cleanUp,
  };
}

/**
 * Per consumer group, the events routed to it that it has neither handled nor dead-lettered, from
 * the database alone: every due outbox row whose topic the group's queue is bound to, less the
 * group's processed_messages and open dead_letters rows. Unlike the queue depths, this counts the
 * messages a worker holds unacknowledged too.
 */
async function unhandledDeliveries(db: BenchReader, topology: Topology, prefix: string): Promise<Record<string, number>> {
  const params: string[] = [];
  const like = (s: string) => s.replace(/[\\%_]/g, '\\$&');
  const groups = topology.queues.filter((q) => q.eventBindings.length > 0).map((q) => ({
    consumer: q.name.slice(`${prefix}.q.`.length),
    // Bindings in RabbitMQ syntax (topology.ts bindingKey): `#` everything, `a.*.#` below `a`, else exact.
    where: q.eventBindings.map((b) => {
      if (b === '#') return 'true';
      params.push(b.endsWith('.*.#') ? `${like(b.slice(0, -4))}.%` : b);
      return b.endsWith('.*.#') ? `topic like $${params.length}` : `topic = $${params.length}`;
    }).join(' or '),
  }));
  if (groups.length === 0) return {};
  const [routed] = await db.query<Record<string, number>>(
    `select ${groups.map((g, i) => `count(*) filter (where ${g.where})::int as g${i}`).join(', ')} from outbox where deliver_after <= now()`, params);
  const handled = new Map<string, number>();
  const rows = await db.query<{ consumer: string; n: number }>(
    `select consumer, count(*)::int as n from (
       select consumer from processed_messages
       union all select consumer from dead_letters where replayed_at is null) as done
     group by consumer`);
  for (const row of rows) handled.set(row.consumer, row.n);
  return Object.fromEntries(groups.map((g, i) => [g.consumer, Math.max(0, (routed?.[`g${i}`] ?? 0) - (handled.get(g.consumer) ?? 0))]));
}

/** The RabbitMQ topology a flashsale process with `env` declares, computed the way it computes it; undefined without RabbitMQ. */
export async function rabbitTopology(env: Record<string, string>): Promise<Topology | undefined> {
  const probe = await buildSystem(loadConfig({ ...process.env, ...env, LOG_LEVEL: 'silent' }));
  const topology = probe.broker instanceof RabbitMqBroker ? probe.broker.topology() : undefined;
  await probe.close();
  return topology;
}

async function deleteTopologyQueues(amqpUrl: string, topology: Topology | undefined): Promise<void> {
  if (!topology) return;
  const connection = await amqp.connect(amqpUrl);
  try {
    await deleteTopologies(await connection.createChannel(), [topology]);
  } finally {
    await connection.close();
  }
}

/** The queues a `start` process declared under the run's prefix, computed the way it computed them. */
export async function deleteQueues(env: Record<string, string>): Promise<void> {
  await deleteTopologyQueues(env.AMQP_URL!, await rabbitTopology(env));
}
