import { setTimeout as sleep } from 'node:timers/promises';
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { connectRedis, type RedisTarget } from '../redis.ts';
import { GateUnavailableError, type Admission, type GateAdjustment, type GateItem, type GateLine, type GateQuota, type RefusalReason, type StockGate } from './gate.ts';
import { Fence } from './redis-fence.ts';
import { admitItemByItem } from './redis-item-by-item.ts';
import { fenceKeys, gateKeys } from './redis-keys.ts';
import { adjustScript, admitScript, defineScripts, GateCode, loadScript, releaseScript, type GateScripts, type RefusalCode, type Reply } from './redis-scripts.ts';

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

/**
 * The stock gate in Redis, shared by every API process. Keys: redis-keys.ts; one Lua script per
 * decision: redis-scripts.ts; the fence and the rebuild: redis-fence.ts; admission on a Redis
 * Cluster: redis-item-by-item.ts.
 *
 * Fencing: Redis here keeps nothing on disk, so a restart empties it. Admit and release pass the
 * generation they believe current; a script refuses an item stamped with another generation
 * (code 5) and reports a missing item (code 4), and the gate then re-reads the fence. Fence gone
 * means the data is gone: `admit` throws `GateUnavailableError` and the registered rebuild (see
 * `onLost`) reloads everything from the database under a fresh generation, publishing the fence
 * only when it has finished. Items are only ever created whole by `load`, so an empty gate has
 * nothing that could admit anyone.
 */
export class RedisStockGate implements StockGate {
  readonly kind = 'redis' as const;
  readonly #client: Redis | Cluster;
  readonly #scripts: GateScripts;
  readonly #prefix: string;
  readonly #fence: Fence;
  readonly #perItem: boolean;
  #owned = false;
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
    this.#perItem = options.perItem ?? client instanceof Cluster;
    this.#onError = options.onError ?? (() => {});
    this.#scripts = defineScripts(client);
    this.#fence = new Fence(client, this.#scripts, { keys: fenceKeys(prefix), lockMs: options.rebuildLockMs ?? 60_000, onError: this.#onError });
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
    return this.#fence.register(rebuild);
  }

  /**
   * Resolves once the gate is loaded, running the registered rebuild if the fence is missing (or
   * waiting for another process's). Use at start instead of loading directly, so that processes
   * starting together rebuild once and never overwrite each other's admissions.
   */
  async whenReady(timeoutMs = 30_000): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while (!(await this.ready())) {
      if (performance.now() >= deadline) throw new GateUnavailableError('The stock gate was not loaded in time.', { cause: this.#fence.lastError });
      await this.#fence.recovering;
      await sleep(50);
    }
  }

  async load(items: readonly GateItem[], quotas: readonly GateQuota[]): Promise<void> {
    const rebuilding = this.#fence.countRebuildLoad();
    for (;;) {
      const { stamp, publish } = rebuilding !== undefined ? { stamp: rebuilding, publish: false } : await this.#fence.stampForLoad();
      await loadScript(this.#scripts, this.#prefix, stamp, items, quotas);
      if (!publish) return;
      if (await this.#fence.publish(stamp)) return;
      // Another process published a generation first: write ours again under it.
    }
  }

  async admit(userId: string, lines: readonly GateLine[], nowMs: number): Promise<Admission> {
    assertLines(lines);
    if (lines.length === 0) return { ok: true, remaining: [] };
    try {
      const reply = this.#perItem && lines.length > 1
        ? await admitItemByItem(lines, (line) => this.#admitFenced(userId, [line], nowMs), (taken) => this.release(userId, taken))
        : await this.#admitFenced(userId, lines, nowMs);
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
        await this.#fence.fenced((generation) => releaseScript(this.#scripts, this.#prefix, generation, userId, batch));
      } catch (error) {
        // A lost or fenced gate takes no releases: its rebuild restores the database's truth.
        if (!(error instanceof GateUnavailableError)) throw error;
      }
    }
  }

  async adjust(changes: readonly GateAdjustment[]): Promise<void> {
    for (const change of changes) {
      if (!Number.isSafeInteger(change.availableDelta)) throw new RangeError(`gate adjustment must be an integer, got ${change.availableDelta}`);
      try {
        await this.#fence.fenced((generation) => adjustScript(this.#scripts, this.#prefix, generation, change));
      } catch (error) {
        // Like a release: a lost or fenced gate takes no adjustment; its rebuild reads the database's terms.
        if (!(error instanceof GateUnavailableError)) throw error;
      }
    }
  }

  async remove(saleItemIds: readonly string[]): Promise<void> {
    // One item's two keys share a slot: one DEL per item works on a Redis Cluster too.
    for (const id of saleItemIds) {
      const keys = gateKeys(this.#prefix, id);
      await this.#client.del(keys.item, keys.quota);
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
      return (await this.#fence.read()) !== undefined;
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    this.#fence.close();
    this.#client.off('ready', this.#onConnect);
    await this.#fence.recovering;
    if (!this.#owned) return;
    await this.#client.quit().catch(() => this.#client.disconnect());
    this.#client.off('error', this.#onError);
  }

  #admitFenced(userId: string, lines: readonly GateLine[], nowMs: number): Promise<Reply> {
    return this.#fence.fenced((generation) => admitScript(this.#scripts, this.#prefix, generation, userId, lines, nowMs));
  }
}

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

function assertLines(lines: readonly GateLine[]): void {
  for (const line of lines) {
    if (!Number.isSafeInteger(line.quantity) || line.quantity <= 0) throw new RangeError(`gate line quantity must be a positive integer, got ${line.quantity}`);
  }
}
