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
import { deleteTopologies } from '../src/platform/broker/rabbitmq/topology.ts';
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

/** A server under load, in its own process, with the sale's items created. */
export interface RunningTarget {
  url: string;
  /** Sale item ids, in the order of the plan's items. */
  itemIds: string[];
  /** Call right before the load starts: counters are read from here. */
  markStart(): Promise<void>;
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

/** Peak resident memory of a process, from /proc (Linux); null elsewhere. */
async function peakRssMb(pid: number | undefined): Promise<number | null> {
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
}

/** `bench/serve.ts` as a child process: the ceiling or one baseline. */
async function startServe(target: string, config: { env: BaselineEnv; items: BenchItem[] }, nodeArgs: readonly string[]): Promise<ServeProcess & { dir: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'flashsale-bench-'));
  const file = join(dir, 'config.json');
  await writeFile(file, JSON.stringify(config));
  const child = spawn(process.execPath, [...nodeArgs, '--import', 'tsx', SERVE, '--target', target, '--port', '0', '--config', file], { stdio: ['ignore', 'pipe', 'pipe'] });
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
  return { child, url: `http://127.0.0.1:${port}`, dir };
}

async function stopServe(p: ServeProcess): Promise<void> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return;
  const exited = once(p.child, 'exit');
  p.child.kill('SIGTERM');
  const timer = setTimeout(() => p.child.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(timer);
}

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
    url: serve.url, itemIds,
    markStart: async () => {},
    async finish() {
      const rss = await peakRssMb(serve.child.pid);
      await stop();
      return { oversold: 0, unitsSold: 0, dbTransactions: null, peakRssMb: rss };
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
  let serve: (ServeProcess & { dir: string }) | undefined;
  const cleanUp = async () => {
    if (serve) {
      await stopServe(serve);
      await rm(serve.dir, { recursive: true, force: true });
    }
    await database.drop();
  };
  try {
    serve = await startServe(baseline.name, { env, items: items.map((s, i) => ({ id: itemIds[i]!, ...s })) }, nodeArgs);
  } catch (error) {
    await cleanUp();
    throw error;
  }
  const running = serve;
  return {
    url: running.url, itemIds,
    markStart: async () => {},
    async finish() {
      await fetch(`${running.url}/__bench/settle`, { method: 'POST' });
      const audit = (await (await fetch(`${running.url}/__bench/audit`)).json()) as BaselineAudit;
      const rss = await peakRssMb(running.child.pid);
      await stopServe(running); // its backends exit and flush their statistics
      const committed = await database.committed();
      await cleanUp();
      return { oversold: audit.oversold, unitsSold: audit.units, dbTransactions: committed, peakRssMb: rss };
    },
    abort: cleanUp,
  };
}

const BENCH_SECRET_BYTES = 24;

/** A bench-only JWT secret shared by the bench (which mints buyers' tokens) and the target. */
export function benchSecret(): string {
  return `bench-${randomBytes(BENCH_SECRET_BYTES).toString('hex')}`;
}

interface FlashsaleSale {
  itemIds: string[];
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
  return { itemIds: (sale.items as Array<{ id: string }>).map((item) => item.id) };
}

async function metric(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const value = new RegExp(`^${name} (\\d+(?:\\.\\d+)?)`, 'm').exec(text)?.[1];
  return Number(value ?? 0);
}

const committedTransactions = (url: string) => metric(url, 'flashsale_db_transactions_committed');

export interface FlashsaleOptions {
  mode: 'embedded' | 'distributed';
  engines: Engines;
  items: readonly ItemSpec[];
  jwtSecret: string;
  paymentWindowS?: number;
  /** Extra Node.js flags for the process (`--cpu-prof`). */
  nodeArgs?: readonly string[];
}

export interface RunningFlashsale extends RunningTarget {
  process: CliProcess;
  tokens: TokenService;
}

/**
 * `flashsale start` as its own process, exactly as an operator starts it — embedded on a fresh data
 * directory, or on PostgreSQL + Redis + RabbitMQ with a database, key prefix and queue prefix of its
 * own — with a sale created through the API.
 */
export async function startFlashsale(options: FlashsaleOptions): Promise<RunningFlashsale> {
  const namespace = `fsbench_${randomBytes(6).toString('hex')}`;
  const dataDir = await mkdtemp(join(tmpdir(), 'flashsale-bench-data-'));
  const database = options.mode === 'distributed' ? await createDatabase(options.engines, namespace) : undefined;
  const [port, pspPort] = [await freePort(), await freePort()];
  const env: Record<string, string> = {
    PORT: String(port), PSP_PORT: String(pspPort), DATA_DIR: dataDir, PSP_DATA_DIR: join(dataDir, 'psp'),
    PSP_WEBHOOK_URL: `http://127.0.0.1:${port}/v1/payments/webhook`,
    JWT_SECRET: options.jwtSecret, SEED_DEMO: 'false', LOG_LEVEL: 'warn',
    // Every virtual buyer comes from this one address: the per-IP limit would measure itself.
    RATE_LIMIT_IP_MAX: '1000000000',
    ...(database ? {
      DATABASE_URL: database.url, REDIS_URL: options.engines.redisUrl, REDIS_KEY_PREFIX: namespace,
      AMQP_URL: options.engines.amqpUrl, AMQP_PREFIX: namespace,
    } : {}),
  };
  const cleanUp = async () => {
    if (database) {
      await deleteQueues(env).catch(() => {});
      await deleteRedisKeys(options.engines.redisUrl, `${namespace}:`).catch(() => {});
      await database.drop().catch(() => {});
    }
    await rm(dataDir, { recursive: true, force: true });
  };
  let child: CliProcess;
  try {
    child = await startCliProcess(['start'], env, { ready: { http: `http://127.0.0.1:${port}/ready` }, url: `http://127.0.0.1:${port}`, timeoutMs: 90_000, nodeArgs: options.nodeArgs ?? [] });
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
  let before = 0;
  const admin = tokens.issue({ userId: randomUUID(), role: 'admin' });
  return {
    url: child.url, itemIds: sale.itemIds, process: child, tokens,
    markStart: async () => void (before = await committedTransactions(child.url)),
    async finish() {
      const after = await committedTransactions(child.url);
      const batches = await metric(child.url, 'flashsale_group_commit_batch_size_count');
      const batched = await metric(child.url, 'flashsale_group_commit_batch_size_sum');
      const audit = (await (await fetch(`${child.url}/v1/admin/audit`, { headers: { authorization: `Bearer ${admin}` } })).json()) as { oversoldUnits: number; stock: { held: number; sold: number } };
      const rss = await peakRssMb(child.child.pid);
      await stopProcess(child, 30_000);
      await cleanUp();
      return {
        oversold: audit.oversoldUnits, unitsSold: audit.stock.held + audit.stock.sold, dbTransactions: after - before, peakRssMb: rss,
        groupCommit: { batches, attemptsPerBatch: batches > 0 ? Math.round((batched / batches) * 10) / 10 : 0 },
      };
    },
    async abort() {
      await stopProcess(child, 10_000);
      await cleanUp();
    },
  };
}

/** The queues a `start` process declared under the run's prefix, computed the way it computed them. */
export async function deleteQueues(env: Record<string, string>): Promise<void> {
  const probe = await buildSystem(loadConfig({ ...process.env, ...env, LOG_LEVEL: 'silent' }));
  const topology = probe.broker instanceof RabbitMqBroker ? probe.broker.topology() : undefined;
  await probe.close();
  if (!topology) return;
  const connection = await amqp.connect(env.AMQP_URL!);
  try {
    await deleteTopologies(await connection.createChannel(), [topology]);
  } finally {
    await connection.close();
  }
}
