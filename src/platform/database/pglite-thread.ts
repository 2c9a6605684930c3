import { Worker } from 'node:worker_threads';
import type { Database, Tx } from './database.ts';
import { quiet, runAfterCommit } from './database.ts';

export type ThreadRequest = { id: number; op: 'query'; sql: string; params: readonly unknown[] } | { id: number; op: 'close' };
export type ThreadReply = { id: number; rows?: unknown[]; error?: { message: string; fields: Record<string, string | number> } };

/**
 * The worker's JavaScript is PGlite's protocol code, whose garbage is short-lived buffers: a 4 MB
 * young generation (V8's default grows to 16+ MB) keeps it ~60 MB smaller at no measured cost.
 */
const WORKER_LIMITS = { maxYoungGenerationSizeMb: 4 };

type Pending = { resolve(rows: unknown[]): void; reject(error: Error): void };

/**
 * PGlite in a worker thread of its own. PGlite runs PostgreSQL's WASM synchronously on the thread
 * that owns it; here that is not the thread serving HTTP, so a long statement (or a burst of the
 * consumers' bookkeeping) no longer stalls buyers' requests, and the database's work can use the
 * machine's other core. Each statement is a message each way (~20–50 µs); transactions are
 * serialized here by one queue — the worker's single connection takes one at a time anyway.
 */
export class PgliteThreadDatabase implements Database {
  readonly kind = 'pglite' as const;
  #worker: Worker;
  #pending = new Map<number, Pending>();
  #nextId = 1;
  #committed = 0;
  #failure: Error | undefined;
  #turn: Promise<unknown> = Promise.resolve();
  #onClose: Array<() => void> = [];

  private constructor(worker: Worker) {
    this.#worker = worker;
    worker.on('message', (reply: ThreadReply) => this.#settle(reply));
    // A worker may throw anything; what the pending statements are failed with is an Error.
    worker.on('error', (error) => this.#fail(error instanceof Error ? error : new Error(String(error))));
    worker.on('exit', (code) => this.#fail(new Error(`the PGlite worker thread exited (code ${code})`)));
  }

  /** Opens `dataDir` (a directory or `memory://`) in a new worker thread. */
  static async open(dataDir: string): Promise<PgliteThreadDatabase> {
    const worker = new Worker(new URL('./pglite-worker.ts', import.meta.url), { workerData: { dataDir }, resourceLimits: WORKER_LIMITS });
    await new Promise<void>((resolve, reject) => {
      const onReady = () => { worker.off('error', reject); resolve(); };
      worker.once('message', onReady);
      worker.once('error', (error) => { worker.off('message', onReady); reject(error); });
    });
    return new PgliteThreadDatabase(worker);
  }

  get committedTransactions(): number {
    return this.#committed;
  }

  async query<R>(sql: string, params: readonly unknown[] = []): Promise<R[]> {
    const rows = await this.#exclusive(() => this.#run(sql, params));
    this.#committed++; // a statement outside a transaction is one
    return rows as R[];
  }

  async transaction<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    const callbacks: Array<() => void | Promise<void>> = [];
    const result = await this.#exclusive(async () => {
      // Not awaited: the thread runs requests in order, so the first statement can follow `begin` at
      // once instead of a round trip later (which, with the HTTP thread busy, is milliseconds).
      const begun = quiet(this.#run('begin', [])); // awaited below; its failure fails the statements too
      const sent: Array<Promise<unknown>> = [];
      try {
        const value = await fn({
          query: async <R>(sql: string, params: readonly unknown[] = []) => (await this.#run(sql, params)) as R[],
          send: (sql, params = []) => void sent.push(quiet(this.#run(sql, params))),
          afterCommit: (cb) => void callbacks.push(cb),
        });
        // Sent behind the last write without waiting for it: if a write failed, the transaction
        // is aborted and PostgreSQL's COMMIT rolls it back; the write's error is what we report.
        const committed = quiet(this.#run('commit', []));
        await begun;
        await Promise.all(sent);
        await committed;
        return value;
      } catch (error) {
        await this.#run('rollback', []).catch(() => undefined);
        throw error;
      }
    });
    this.#committed++;
    await runAfterCommit(callbacks);
    return result;
  }

  async ping(): Promise<void> {
    await this.query('select 1');
  }

  onClose(callback: () => void): void {
    this.#onClose.push(callback);
  }

  async close(): Promise<void> {
    if (!this.#failure) {
      await this.#exclusive(() => this.#send({ id: this.#nextId++, op: 'close' })).catch(() => undefined);
      this.#failure = new Error('the database is closed');
      await this.#worker.terminate();
    }
    for (const callback of this.#onClose.splice(0)) callback();
  }

  /** One caller at a time: a transaction's statements must not interleave with anyone else's. */
  #exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#turn.then(fn, fn);
    this.#turn = run.catch(() => undefined);
    return run;
  }

  #run(sql: string, params: readonly unknown[]): Promise<unknown[]> {
    return this.#send({ id: this.#nextId++, op: 'query', sql, params });
  }

  #send(request: ThreadRequest): Promise<unknown[]> {
    if (this.#failure) return Promise.reject(this.#failure);
    return new Promise((resolve, reject) => {
      this.#pending.set(request.id, { resolve, reject });
      this.#worker.postMessage(request);
    });
  }

  #settle(reply: ThreadReply): void {
    const pending = this.#pending.get(reply.id);
    if (!pending) return;
    this.#pending.delete(reply.id);
    if (reply.error) pending.reject(Object.assign(new Error(reply.error.message), reply.error.fields));
    else pending.resolve(reply.rows ?? []);
  }

  #fail(error: Error): void {
    this.#failure ??= error;
    for (const pending of this.#pending.values()) pending.reject(error);
    this.#pending.clear();
  }
}
