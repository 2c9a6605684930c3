import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';
import { GateUnavailableError } from './gate.ts';
import { GateCode, type GateScripts, type Reply } from './redis-scripts.ts';

/**
 * The fence and the rebuild of the Redis stock gate (how admit and release use them: see
 * RedisStockGate). The fence key holds the current generation only while the gate holds a complete
 * image of the database. When it is gone, the registered rebuild reloads everything from the
 * database under a fresh generation — in one process at a time across all of them (a Redis lock) —
 * and publishes the fence only when it has finished.
 */

/** Stamp of items written while the fence is down and no rebuild runs yet: fenced until rebuilt. */
const PENDING = '';
/** Least time between two rebuild attempts of one process after a failed one. */
const RETRY_MS = 1000;

interface RebuildContext {
  generation: string;
  loads: number;
}

export interface FenceOptions {
  /** The fence key and the rebuild-lock key (see redis-keys.ts). */
  keys: { fence: string; lock: string };
  /** How long one process may hold the rebuild lock. */
  lockMs: number;
  /** Told about failed rebuilds. */
  onError: (error: unknown) => void;
}

export class Fence {
  readonly #inRebuild = new AsyncLocalStorage<RebuildContext>();
  /** Last fence value seen; a hint only, re-read whenever a script disagrees with it. */
  #generation: string | undefined;
  #rebuild: (() => Promise<void>) | undefined;
  #recovering: Promise<void> | undefined;
  #retryAt = 0;
  #lastError: unknown;
  #closed = false;

  private readonly client: Redis | Cluster;
  private readonly scripts: GateScripts;
  private readonly opts: FenceOptions;

  constructor(
    client: Redis | Cluster,
    scripts: GateScripts,
    opts: FenceOptions,
  ) {
    this.client = client;
    this.scripts = scripts;
    this.opts = opts;
  }

  /** The running rebuild of this process, if any. */
  get recovering(): Promise<void> | undefined {
    return this.#recovering;
  }

  /** Why the last rebuild failed. */
  get lastError(): unknown {
    return this.#lastError;
  }

  /** The owner's full rebuild from the database; returns a function that unregisters it. */
  register(rebuild: () => Promise<void>): () => void {
    this.#rebuild = rebuild;
    return () => {
      if (this.#rebuild === rebuild) this.#rebuild = undefined;
    };
  }

  /** No rebuild starts after this. */
  close(): void {
    this.#closed = true;
  }

  /** Reads the fence; when it is gone, starts the registered rebuild. */
  async read(): Promise<string | undefined> {
    const fence = await this.client.get(this.opts.keys.fence);
    this.#generation = fence ?? undefined;
    if (fence === null) this.#recover();
    return this.#generation;
  }

  /**
   * Runs one script call under the generation believed current. On a missing (4) or fenced (5)
   * item it re-reads the fence: gone → GateUnavailableError (and the rebuild starts); changed →
   * another process rebuilt, so retry once under the new generation; unchanged and still fenced →
   * an item survived from another generation, the gate is no complete image: drop the fence so
   * every process stops admitting, and rebuild.
   */
  async fenced(call: (generation: string) => Promise<Reply>): Promise<Reply> {
    let generation = this.#generation ?? (await this.read());
    for (let attempt = 0; ; attempt++) {
      if (generation === undefined) throw new GateUnavailableError();
      const reply = await call(generation);
      if (reply.code !== GateCode.unknownItem && reply.code !== GateCode.gateNotLoaded) return reply;
      const current = await this.read();
      if (current === undefined) throw new GateUnavailableError();
      if (current !== generation) {
        if (attempt > 0) throw new GateUnavailableError();
        generation = current;
        continue;
      }
      if (reply.code === GateCode.unknownItem) return reply;
      await this.#dropFence(current);
      throw new GateUnavailableError();
    }
  }

  /**
   * Inside the registered rebuild: the generation it loads under, and the load counted (a rebuild
   * that loads nothing fails). Undefined outside it.
   */
  countRebuildLoad(): string | undefined {
    const rebuild = this.#inRebuild.getStore();
    if (rebuild) rebuild.loads++;
    return rebuild?.generation;
  }

  /**
   * The generation a load outside the rebuild writes under: the fence's. While the fence is down
   * (and the rebuild started), a running rebuild's, or PENDING while one is registered — so a load
   * made outside the rebuild (a new sale) cannot reopen the gate half-loaded — or else a fresh
   * generation the load publishes itself (`publish`).
   */
  async stampForLoad(): Promise<{ stamp: string; publish: boolean }> {
    const [fence, rebuilding] = await this.client.mget(this.opts.keys.fence, this.opts.keys.lock);
    this.#generation = fence ?? undefined;
    if (fence) return { stamp: fence, publish: false };
    this.#recover();
    // A new sale created while some process rebuilds joins that rebuild's generation.
    if (rebuilding) return { stamp: rebuilding, publish: false };
    if (this.#rebuild) return { stamp: PENDING, publish: false };
    return { stamp: randomUUID(), publish: true };
  }

  /** Publishes `stamp` as the fence; false if another process published a generation first. */
  async publish(stamp: string): Promise<boolean> {
    if ((await this.client.set(this.opts.keys.fence, stamp, 'NX')) !== 'OK') return false;
    this.#generation = stamp;
    return true;
  }

  async #dropFence(current: string): Promise<void> {
    // With no registered rebuild the owner reloads by hand; dropping the fence would only stall it.
    if (this.#rebuild && (await this.scripts.gateDelIfEquals(1, this.opts.keys.fence, current)) === 1) {
      this.#generation = undefined;
      this.#recover();
    }
  }

  #recover(): void {
    const rebuild = this.#rebuild;
    if (!rebuild || this.#recovering || this.#closed || performance.now() < this.#retryAt) return;
    this.#recovering = this.#runRebuild(rebuild)
      .catch((error: unknown) => {
        this.#lastError = error;
        this.opts.onError(error);
        this.#retryAt = performance.now() + RETRY_MS;
      })
      .finally(() => {
        this.#recovering = undefined;
      });
  }

  async #runRebuild(rebuild: () => Promise<void>): Promise<void> {
    const { keys } = this.opts;
    const context: RebuildContext = { generation: randomUUID(), loads: 0 };
    if ((await this.client.set(keys.lock, context.generation, 'PX', this.opts.lockMs, 'NX')) !== 'OK') return; // another process is rebuilding
    try {
      if ((await this.client.get(keys.fence)) !== null) return; // restored while we waited
      await this.#inRebuild.run(context, rebuild);
      if (context.loads === 0) throw new Error('the registered gate rebuild did not call load()');
      await this.client.set(keys.fence, context.generation, 'NX');
      this.#generation = (await this.client.get(keys.fence)) ?? undefined;
    } finally {
      await this.scripts.gateDelIfEquals(1, keys.lock, context.generation);
    }
  }
}
