import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { connectRedis, type RedisTarget } from '../redis.ts';
import { GateUnavailableError, type Admission, type GateItem, type GateLine, type GateQuota, type RefusalReason, type StockGate } from './gate.ts';

type Arg = string | number;
type Args = Array<Arg | readonly Arg[]>;

/** One script per decision, in `lua/`, named `name-<keys>.lua` with a header listing KEYS and ARGV. */
interface GateScripts {
  gateAdmit(numKeys: number, ...args: Args): Promise<unknown>;
  gateRelease(numKeys: number, ...args: Args): Promise<unknown>;
  gateLoad(numKeys: number, ...args: Args): Promise<unknown>;
  gateDelIfEquals(numKeys: number, ...args: Args): Promise<unknown>;
}

const SCRIPT_FILES: Record<keyof GateScripts, string> = {
  gateAdmit: 'admit-2.lua',
  gateRelease: 'release-2.lua',
  gateLoad: 'load-2.lua',
  gateDelIfEquals: 'delIfEquals-1.lua',
};

const LUA = Object.fromEntries(
  Object.entries(SCRIPT_FILES).map(([name, file]) => [name, readFileSync(new URL(`./lua/${file}`, import.meta.url), 'utf8')]),
) as Record<keyof GateScripts, string>;

/** The scripts' result codes (see the headers in `lua/`). */
export const GateCode = { ok: 0, soldOut: 1, limitExceeded: 2, saleNotActive: 3, unknownItem: 4, gateNotLoaded: 5 } as const;

type RefusalCode = 1 | 2 | 3 | 4 | 5;
type Reply = { code: 0; remaining: number[] } | { code: RefusalCode; /** index into the lines */ line: number; remaining: number };

const REASONS: Record<Exclude<RefusalCode, 5>, RefusalReason> = {
  [GateCode.soldOut]: 'sold_out',
  [GateCode.limitExceeded]: 'limit_exceeded',
  [GateCode.saleNotActive]: 'sale_not_active',
  [GateCode.unknownItem]: 'unknown_item',
};

/** The one place a script's code becomes the port's answer. */
function toAdmission(reply: Reply, lines: readonly GateLine[]): Admission {
  if (reply.code === GateCode.ok) return { ok: true, remaining: reply.remaining };
  if (reply.code === GateCode.gateNotLoaded) throw new GateUnavailableError();
  return { ok: false, reason: REASONS[reply.code], saleItemId: lines[reply.line]!.saleItemId, remaining: reply.remaining };
}

function parseReply(raw: unknown): Reply {
  const values: unknown = raw;
  if (!Array.isArray(values) || !values.every((v): v is number => typeof v === 'number')) throw new Error(`unexpected gate script reply: ${JSON.stringify(raw)}`);
  const [code, ...rest] = values;
  if (code === GateCode.ok) return { code, remaining: rest };
  if (code === 1 || code === 2 || code === 3 || code === 4 || code === 5) return { code, line: (rest[0] ?? 1) - 1, remaining: rest[1] ?? 0 };
  throw new Error(`unexpected gate script code: ${String(code)}`);
}

/**
 * The keys of one sale item. The hash tag is the sale item id, so everything one decision about
 * one item touches lives in one Redis Cluster slot; the prefix carries no braces.
 */
export function gateKeys(prefix: string, saleItemId: string): { item: string; quota: string } {
  return { item: `${prefix}:gate:{${saleItemId}}:item`, quota: `${prefix}:gate:{${saleItemId}}:quota` };
}

function assertLines(lines: readonly GateLine[]): void {
  for (const line of lines) {
    if (!Number.isSafeInteger(line.quantity) || line.quantity <= 0) throw new RangeError(`gate line quantity must be a positive integer, got ${line.quantity}`);
  }
}

/** Stamp of items written while the fence is down and no rebuild runs yet: fenced until rebuilt. */
const PENDING = '';
/** Least time between two rebuild attempts of one process after a failed one. */
const RETRY_MS = 1000;

export interface RedisStockGateOptions {
  /** Key prefix, without braces (the hash tag must be the sale item). Default `flashsale`. */
  prefix?: string;
  /**
   * Admit multi-line attempts item by item with compensation instead of in one script. Required
   * on a Redis Cluster (and the default for a `Cluster` client); on a single node one script is
   * atomic over all lines.
   */
  perItem?: boolean;
  /** How long one process may hold the rebuild lock (a crashed rebuilder blocks others this long). */
  rebuildLockMs?: number;
  /**
   * Told about failed rebuilds (retried at the next detection, at most once a second) and, on a
   * connection the gate opened itself, connection errors. Buyers meanwhile get GateUnavailableError.
   */
  onError?: (error: unknown) => void;
}

interface RebuildContext {
  generation: string;
  loads: number;
}

/**
 * The stock gate in Redis, shared by every API process.
 *
 * Keys (`P` = prefix):
 * - `P:gate:{<saleItemId>}:item`     hash: available, limit, startsAt, endsAt, epoch (generation it was loaded under)
 * - `P:gate:{<saleItemId>}:quota`    hash: userId → units held or bought
 * - `P:gate:{fence}:epoch`           the fence: the current generation; present only while the
 *                                    gate holds a complete image of the database
 * - `P:gate:{fence}:rebuild-lock`    the generation being rebuilt; one rebuilding process at a time
 *
 * Fencing: Redis here keeps nothing on disk, so a restart empties it. Admit and release pass the
 * generation they believe current; a script refuses an item stamped with another generation
 * (code 5) and reports a missing item (code 4), and the gate then re-reads the fence. Fence gone
 * means the data is gone: `admit` throws `GateUnavailableError` and the registered rebuild (see
 * `onLost`) reloads everything from the database under a fresh generation, publishing the fence
 * only when it has finished. Items are only ever created whole by `load`, so an empty gate has
 * nothing that could admit anyone.
 *
 * Scripts are defined once per connection with ioredis' `defineCommand`: called by SHA, and a
 * `NOSCRIPT` (Redis restarted, `SCRIPT FLUSH`) is answered by resending the script, unseen by callers.
 */
export class RedisStockGate implements StockGate {
  readonly kind = 'redis' as const;
  readonly #client: Redis | Cluster;
  readonly #scripts: GateScripts;
  readonly #prefix: string;
  readonly #fenceKey: string;
  readonly #lockKey: string;
  readonly #perItem: boolean;
  readonly #lockMs: number;
  readonly #inRebuild = new AsyncLocalStorage<RebuildContext>();
  #owned = false;
  /** Last fence value seen; a hint only, re-read whenever a script disagrees with it. */
  #generation: string | undefined;
  #rebuild: (() => Promise<void>) | undefined;
  #recovering: Promise<void> | undefined;
  #retryAt = 0;
  #lastError: unknown;
  #closed = false;
  readonly #onError: (error: unknown) => void;
  readonly #onConnect = (): void => {
    // After a reconnect Redis may have restarted empty: look at once, not at the next buyer.
    void this.ready();
  };

  /** A gate over its own connection to `url`; `close()` ends it. */
  static connect(target: string | RedisTarget, options: RedisStockGateOptions & { redis?: RedisOptions } = {}): RedisStockGate {
    // Fail fast while Redis is down: a buyer gets 503 at once instead of waiting in a queue.
    const client = connectRedis(typeof target === 'string' ? { urls: [target], cluster: false } : target, { maxRetriesPerRequest: 1, ...options.redis });
    const gate = new RedisStockGate(client, options);
    gate.#owned = true;
    client.on('error', gate.#onError);
    return gate;
  }

  /** A gate over a caller's client (which `close()` leaves open). */
  constructor(client: Redis | Cluster, options: RedisStockGateOptions = {}) {
    const prefix = options.prefix ?? 'flashsale';
    if (/[{}]/.test(prefix)) throw new Error(`gate key prefix must not contain braces (the hash tag is the sale item): ${prefix}`);
    this.#client = client;
    this.#prefix = prefix;
    this.#fenceKey = `${prefix}:gate:{fence}:epoch`;
    this.#lockKey = `${prefix}:gate:{fence}:rebuild-lock`;
    this.#perItem = options.perItem ?? client instanceof Cluster;
    this.#lockMs = options.rebuildLockMs ?? 60_000;
    this.#onError = options.onError ?? (() => {});
    for (const [name, lua] of Object.entries(LUA)) client.defineCommand(name, { lua });
    this.#scripts = client as (Redis | Cluster) & GateScripts;
    client.on('ready', this.#onConnect);
  }

  /** A shared gate is rebuilt only when its state is missing: at start if nobody loaded it yet, and whenever it is lost. */
  async open(rebuild: () => Promise<void>): Promise<void> {
    this.onLost(rebuild);
    await this.whenReady();
  }

  /**
   * Registers the owner's full rebuild from the database (e.g. `() => inventory.rebuildGate()`).
   * Whenever this gate finds the fence missing — Redis restarted empty, or never loaded — it runs
   * `rebuild` itself, in one process at a time across all of them (a Redis lock), and publishes
   * the fence when it resolves; until then `admit` throws `GateUnavailableError`. A `load` made
   * outside the rebuild while the fence is down (a new sale) cannot reopen the gate half-loaded:
   * its items join the running rebuild's generation, or stay fenced until the rebuild rewrites
   * them. Returns a function that unregisters.
   */
  onLost(rebuild: () => Promise<void>): () => void {
    this.#rebuild = rebuild;
    return () => {
      if (this.#rebuild === rebuild) this.#rebuild = undefined;
    };
  }

  /**
   * Resolves once the gate is loaded, running the registered rebuild if the fence is missing (or
   * waiting for another process's). Use at start instead of loading directly, so that processes
   * starting together rebuild once and never overwrite each other's admissions.
   */
  async whenReady(timeoutMs = 30_000): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while (!(await this.ready())) {
      if (performance.now() >= deadline) throw new GateUnavailableError('The stock gate was not loaded in time.', { cause: this.#lastError });
      await this.#recovering;
      await sleep(50);
    }
  }

  async load(items: readonly GateItem[], quotas: readonly GateQuota[]): Promise<void> {
    const rebuild = this.#inRebuild.getStore();
    if (rebuild) rebuild.loads++;
    for (;;) {
      let stamp: string;
      let publish = false;
      if (rebuild) stamp = rebuild.generation;
      else {
        const [fence, rebuilding] = await this.#client.mget(this.#fenceKey, this.#lockKey);
        this.#generation = fence ?? undefined;
        if (fence) stamp = fence;
        else {
          this.#recover();
          // A new sale created while some process rebuilds joins that rebuild's generation.
          if (rebuilding) stamp = rebuilding;
          else if (this.#rebuild) stamp = PENDING;
          else {
            stamp = randomUUID();
            publish = true;
          }
        }
      }
      await this.#write(stamp, items, quotas);
      if (!publish) return;
      if ((await this.#client.set(this.#fenceKey, stamp, 'NX')) === 'OK') {
        this.#generation = stamp;
        return;
      }
      // Another process published a generation first: write ours again under it.
    }
  }

  async admit(userId: string, lines: readonly GateLine[], nowMs: number): Promise<Admission> {
    assertLines(lines);
    if (lines.length === 0) return { ok: true, remaining: [] };
    try {
      const reply = this.#perItem && lines.length > 1
        ? await this.#admitItemByItem(userId, lines, nowMs)
        : await this.#fenced((generation) => this.#admitScript(generation, userId, lines, nowMs));
      return toAdmission(reply, lines);
    } catch (error) {
      throw error instanceof GateUnavailableError ? error : new GateUnavailableError('The stock gate is unreachable; retry shortly.', { cause: error });
    }
  }

  async release(userId: string, lines: readonly GateLine[]): Promise<void> {
    assertLines(lines);
    for (const batch of this.#perItem ? lines.map((line) => [line]) : [lines]) {
      if (batch.length === 0) continue;
      try {
        await this.#fenced((generation) => this.#releaseScript(generation, userId, batch));
      } catch (error) {
        // A lost or fenced gate takes no releases: its rebuild restores the database's truth.
        if (!(error instanceof GateUnavailableError)) throw error;
      }
    }
  }

  async available(saleItemId: string): Promise<number | undefined> {
    const value = await this.#client.hget(gateKeys(this.#prefix, saleItemId).item, 'available');
    return value === null ? undefined : Number(value);
  }

  async quota(saleItemId: string, userId: string): Promise<number> {
    const value = await this.#client.hget(gateKeys(this.#prefix, saleItemId).quota, userId);
    return value === null ? 0 : Number(value);
  }

  /** True while the fence is up; false (and the registered rebuild started) when it is gone or Redis is unreachable. */
  async ready(): Promise<boolean> {
    try {
      return (await this.#readFence()) !== undefined;
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#client.off('ready', this.#onConnect);
    await this.#recovering;
    if (!this.#owned) return;
    await this.#client.quit().catch(() => this.#client.disconnect());
    this.#client.off('error', this.#onError);
  }

  /**
   * On a Redis Cluster two items live in different slots and one script may touch only one slot,
   * so a multi-line attempt is admitted item by item, each step atomic, in a fixed order (by sale
   * item id, so attempts over the same items take them in the same order). When a later line is
   * refused, the lines already taken are released again. In between, another buyer may see those
   * units taken and be refused — a lost sale, never an oversell; and if the compensation itself
   * fails, the units stay taken (too conservative) until the next rebuild.
   */
  async #admitItemByItem(userId: string, lines: readonly GateLine[], nowMs: number): Promise<Reply> {
    const order = lines.map((_, i) => i).sort((a, b) => (lines[a]!.saleItemId < lines[b]!.saleItemId ? -1 : lines[a]!.saleItemId > lines[b]!.saleItemId ? 1 : a - b));
    const remaining = lines.map(() => 0);
    const taken: GateLine[] = [];
    const compensate = () => (taken.length === 0 ? Promise.resolve() : this.release(userId, taken).catch(() => undefined));
    for (const i of order) {
      const line = lines[i]!;
      let reply: Reply;
      try {
        reply = await this.#fenced((generation) => this.#admitScript(generation, userId, [line], nowMs));
      } catch (error) {
        await compensate();
        throw error;
      }
      if (reply.code !== GateCode.ok) {
        await compensate();
        return { ...reply, line: i };
      }
      remaining[i] = reply.remaining[0]!;
      taken.push(line);
    }
    return { code: GateCode.ok, remaining };
  }

  async #admitScript(generation: string, userId: string, lines: readonly GateLine[], nowMs: number): Promise<Reply> {
    const keys = this.#lineKeys(lines);
    return parseReply(await this.#scripts.gateAdmit(keys.length, keys, generation, userId, nowMs, lines.map((l) => l.quantity)));
  }

  async #releaseScript(generation: string, userId: string, lines: readonly GateLine[]): Promise<Reply> {
    const keys = this.#lineKeys(lines);
    return parseReply(await this.#scripts.gateRelease(keys.length, keys, generation, userId, lines.map((l) => l.quantity)));
  }

  #lineKeys(lines: readonly GateLine[]): string[] {
    return lines.flatMap((line) => {
      const keys = gateKeys(this.#prefix, line.saleItemId);
      return [keys.item, keys.quota];
    });
  }

  /**
   * Runs one script call under the generation believed current. On a missing (4) or fenced (5)
   * item it re-reads the fence: gone → GateUnavailableError (and the rebuild starts); changed →
   * another process rebuilt, so retry once under the new generation; unchanged and still fenced →
   * an item survived from another generation, the gate is no complete image: drop the fence so
   * every process stops admitting, and rebuild.
   */
  async #fenced(call: (generation: string) => Promise<Reply>): Promise<Reply> {
    let generation = this.#generation ?? (await this.#readFence());
    for (let attempt = 0; ; attempt++) {
      if (generation === undefined) throw new GateUnavailableError();
      const reply = await call(generation);
      if (reply.code !== GateCode.unknownItem && reply.code !== GateCode.gateNotLoaded) return reply;
      const current = await this.#readFence();
      if (current === undefined) throw new GateUnavailableError();
      if (current !== generation) {
        if (attempt > 0) throw new GateUnavailableError();
        generation = current;
        continue;
      }
      if (reply.code === GateCode.unknownItem) return reply;
      // With no registered rebuild the owner reloads by hand; dropping the fence would only stall it.
      if (this.#rebuild && (await this.#scripts.gateDelIfEquals(1, this.#fenceKey, current)) === 1) {
        this.#generation = undefined;
        this.#recover();
      }
      throw new GateUnavailableError();
    }
  }

  /** Reads the fence; when it is gone, starts the registered rebuild. */
  async #readFence(): Promise<string | undefined> {
    const fence = await this.#client.get(this.#fenceKey);
    this.#generation = fence ?? undefined;
    if (fence === null) this.#recover();
    return this.#generation;
  }

  async #write(stamp: string, items: readonly GateItem[], quotas: readonly GateQuota[]): Promise<void> {
    const perItem = new Map<string, Arg[]>(items.map((item) => [item.saleItemId, []]));
    for (const q of quotas) perItem.get(q.saleItemId)?.push(q.userId, q.quantity);
    await Promise.all(items.map((item) => {
      const keys = gateKeys(this.#prefix, item.saleItemId);
      return this.#scripts.gateLoad(2, keys.item, keys.quota, stamp, item.available, item.perUserLimit, item.startsAt, item.endsAt, perItem.get(item.saleItemId)!);
    }));
  }

  #recover(): void {
    const rebuild = this.#rebuild;
    if (!rebuild || this.#recovering || this.#closed || performance.now() < this.#retryAt) return;
    this.#recovering = this.#runRebuild(rebuild)
      .catch((error: unknown) => {
        this.#lastError = error;
        this.#onError(error);
        this.#retryAt = performance.now() + RETRY_MS;
      })
      .finally(() => {
        this.#recovering = undefined;
      });
  }

  async #runRebuild(rebuild: () => Promise<void>): Promise<void> {
    const context: RebuildContext = { generation: randomUUID(), loads: 0 };
    if ((await this.#client.set(this.#lockKey, context.generation, 'PX', this.#lockMs, 'NX')) !== 'OK') return; // another process is rebuilding
    try {
      if ((await this.#client.get(this.#fenceKey)) !== null) return; // restored while we waited
      await this.#inRebuild.run(context, rebuild);
      if (context.loads === 0) throw new Error('the registered gate rebuild did not call load()');
      await this.#client.set(this.#fenceKey, context.generation, 'NX');
      this.#generation = (await this.#client.get(this.#fenceKey)) ?? undefined;
    } finally {
      await this.#scripts.gateDelIfEquals(1, this.#lockKey, context.generation);
    }
  }
}
