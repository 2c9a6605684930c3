/**
 * A flashsale deployment for one chaos scenario: the payment simulator, API processes and workers,
 * each a real `flashsale` child process, on a PostgreSQL database, Redis key prefix and RabbitMQ
 * queue prefix of the scenario's own — so a scenario can kill, restart and flush them freely.
 */
import type { Reconciliation } from '../../src/payment/reconcile.ts';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { clusterSecrets, freePort, startCliProcess, stopProcess, type CliProcess } from '../../src/cli/child.ts';
import { TokenService } from '../../src/platform/tokens.ts';
import { createDatabase, createSale, deleteQueues, deleteRedisKeys, type Engines } from '../targets.ts';

export type Role = 'api' | 'worker' | 'psp';

export interface Member {
  role: Role;
  /** 1-based within its role (the simulator is 1). */
  index: number;
  /** Stable within the cluster: `api-1`, `worker-2`, `psp`. */
  name: string;
  process: CliProcess;
}

export interface ClusterOptions {
  engines: Engines;
  apis: number;
  workers: number;
  /** Environment of every member over the cluster's own (PSP knobs, windows, sweeper period, …). */
  env?: Record<string, string>;
}

export interface AuditBody {
  ok: boolean;
  oversoldUnits: number;
  stock: { initial: number; available: number; held: number; sold: number; written_off?: number };
  money: { reconciliation: Reconciliation; rejectedCaptures: Record<string, { refunded: number; refundPending: number; notCaptured: number }> };
  violations: Array<{ check: string; message: string; ids: string[] }>;
}

const START_TIMEOUT_MS = 90_000;

export class ChaosCluster {
  readonly tokens: TokenService;
  readonly members: Member[] = [];
  /** Output of members that have exited (killed or stopped), for counting what they logged. */
  readonly pastOutput: string[] = [];
  readonly #pool: pg.Pool;
  #cleanup: () => Promise<void>;

  readonly namespace: string;
  readonly env: Record<string, string>;
  readonly options: ClusterOptions;
  readonly pspUrl: string;
  readonly apiPorts: number[];
  readonly databaseUrl: string;

  private constructor(
    namespace: string,
    env: Record<string, string>,
    options: ClusterOptions,
    pspUrl: string,
    apiPorts: number[],
    databaseUrl: string,
    cleanup: () => Promise<void>,
  ) {
    this.namespace = namespace;
    this.env = env;
    this.options = options;
    this.pspUrl = pspUrl;
    this.apiPorts = apiPorts;
    this.databaseUrl = databaseUrl;
    this.tokens = new TokenService(env.JWT_SECRET!, 6 * 3600);
    this.#pool = new pg.Pool({ connectionString: databaseUrl, max: 4 });
    this.#pool.on('error', () => {}); // a backend terminated by the pg-kill scenario
    this.#cleanup = cleanup;
  }

  /** Creates the namespace and starts the simulator, the APIs and the workers. */
  static async start(options: ClusterOptions): Promise<ChaosCluster> {
    const namespace = `fschaos_${randomBytes(6).toString('hex')}`;
    const database = await createDatabase(options.engines, namespace);
    const dataDir = await mkdtemp(join(tmpdir(), 'flashsale-chaos-'));
    const apiPorts: number[] = [];
    for (let i = 0; i < options.apis; i++) apiPorts.push(await freePort());
    const pspPort = await freePort();
    const env: Record<string, string> = {
      DATABASE_URL: database.url, REDIS_URL: options.engines.redisUrl, REDIS_KEY_PREFIX: namespace,
      AMQP_URL: options.engines.amqpUrl, AMQP_PREFIX: namespace,
      // The roles refuse the published development secrets: this cluster's own, and no demo seed.
      ...clusterSecrets(), LOG_LEVEL: 'info',
      PSP_URL: `http://127.0.0.1:${pspPort}`, PSP_PORT: String(pspPort), PSP_PUBLIC_URL: `http://127.0.0.1:${pspPort}`,
      PSP_DATA_DIR: join(dataDir, 'psp'),
      // Webhooks go to the first API; the scenarios that kill it restart it, and the provider retries.
      PSP_WEBHOOK_URL: `http://127.0.0.1:${apiPorts[0]}/v1/payments/webhook`,
      // Every virtual buyer comes from one address, and the admin polls: the limits would measure themselves.
      RATE_LIMIT_IP_MAX: '1000000000', RATE_LIMIT_USER_MAX: '1000000',
      DATABASE_POOL_SIZE: '8', BROKER_POLL_MS: '100', SWEEPER_INTERVAL_MS: '1000', PAYMENT_GRACE_S: '2',
      BROKER_BACKOFF_BASE_MS: '100',
      ...options.env,
    };
    const cleanup = async () => {
      await deleteQueues(env).catch(() => {});
      await deleteRedisKeys(options.engines.redisUrl, `${namespace}:`).catch(() => {});
      await database.drop().catch(() => {});
      await rm(dataDir, { recursive: true, force: true });
    };
    const cluster = new ChaosCluster(namespace, env, options, `http://127.0.0.1:${pspPort}`, apiPorts, database.url, cleanup);
    try {
      await cluster.startMember('psp');
      // The first API migrates the database; the others start once it has.
      for (let i = 0; i < options.apis; i++) await cluster.startMember('api', i + 1);
      await Promise.all(Array.from({ length: options.workers }, (_, i) => cluster.startMember('worker', i + 1)));
    } catch (error) {
      await cluster.stop();
      throw error;
    }
    return cluster;
  }

  get apiUrls(): string[] {
    return this.apiPorts.map((port) => `http://127.0.0.1:${port}`);
  }

  member(name: string): Member {
    const found = this.members.find((m) => m.name === name);
    if (!found) throw new Error(`no member ${name}`);
    return found;
  }

  /** Starts (or restarts) a member; `env` is added to the cluster's for this start only. */
  async startMember(role: Role, index = 1, env: Record<string, string> = {}): Promise<Member> {
    const name = role === 'psp' ? 'psp' : `${role}-${index}`;
    const port = role === 'api' ? this.apiPorts[index - 1]! : undefined;
    const childEnv = { ...this.env, ...env, ...(port ? { PORT: String(port) } : {}) };
    const process = role === 'api'
      ? await startCliProcess(['api'], childEnv, { ready: { http: `http://127.0.0.1:${port}/ready` }, url: `http://127.0.0.1:${port}`, timeoutMs: START_TIMEOUT_MS })
      : role === 'psp'
        ? await startCliProcess(['psp'], childEnv, { ready: { http: `${this.pspUrl}/health` }, url: this.pspUrl, timeoutMs: START_TIMEOUT_MS })
        : await startCliProcess(['worker'], childEnv, { ready: { log: 'worker is up' }, timeoutMs: START_TIMEOUT_MS });
    const member: Member = { role, index, name, process };
    const at = this.members.findIndex((m) => m.name === name);
    if (at >= 0) this.members.splice(at, 1, member);
    else this.members.push(member);
    return member;
  }

  /** SIGKILL: no shutdown hook runs, in-flight work is cut wherever it is. */
  async kill(name: string): Promise<void> {
    const member = this.member(name);
    member.process.child.kill('SIGKILL');
    await member.process.exited;
    this.pastOutput.push(member.process.output());
  }

  /** Stops a member gracefully and starts it again with `env` (a restart with a changed setting, e.g. the clock). */
  async restart(name: string, env: Record<string, string> = {}): Promise<Member> {
    const member = this.member(name);
    await stopProcess(member.process, 15_000);
    this.pastOutput.push(member.process.output());
    return this.startMember(member.role, member.index, env);
  }

  /** Every line any member logged so far, living or gone. */
  logs(): string {
    return [...this.pastOutput, ...this.members.map((m) => m.process.output())].join('\n');
  }

  async query<R extends pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<R[]> {
    return (await this.#pool.query<R>(sql, params)).rows;
  }

  async count(sql: string, params: unknown[] = []): Promise<number> {
    const rows = await this.query<{ n: string }>(sql, params);
    return Number(rows[0]?.n ?? 0);
  }

  adminToken(): string {
    return this.tokens.issue({ userId: randomUUID(), role: 'admin' });
  }

  buyerToken(userId: string): string {
    return this.tokens.issue({ userId, role: 'buyer' });
  }

  /** The audit as an operator runs it, through the first API that answers. */
  async audit(quiet: boolean): Promise<AuditBody> {
    let lastError: unknown;
    for (const url of this.apiUrls) {
      try {
        const response = await fetch(`${url}/v1/admin/audit?quiet=${quiet}`, { headers: { authorization: `Bearer ${this.adminToken()}` } });
        if (response.status === 200 || response.status === 409) return (await response.json()) as AuditBody;
        lastError = new Error(`audit answered ${response.status}: ${await response.text()}`);
      } catch (error) {
        lastError = error;
      }
    }
    throw lastError;
  }

  /** One merchant, one product per item and a sale open now, created through the first API. */
  async createSale(items: ReadonlyArray<{ stock: number; perUserLimit: number }>, paymentWindowS: number): Promise<string[]> {
    return (await createSale(this.apiUrls[0]!, this.tokens, items, paymentWindowS)).itemIds;
  }

  /** As `createSale`, with the sale's id and its merchant's token (to manage the sale while it runs). */
  async createManagedSale(items: ReadonlyArray<{ stock: number; perUserLimit: number }>, paymentWindowS: number): Promise<{ saleId: string; itemIds: string[]; merchantToken: string }> {
    return createSale(this.apiUrls[0]!, this.tokens, items, paymentWindowS);
  }

  /** Stops every member, then removes the namespace. */
  /** Stops every member, then removes the namespace — unless `keep`, to look at what a failed scenario left. */
  async stop(keep = false): Promise<void> {
    await Promise.all(this.members.map((m) => stopProcess(m.process, 10_000).catch(() => {})));
    await this.#pool.end().catch(() => {});
    if (!keep) await this.#cleanup();
  }
}
