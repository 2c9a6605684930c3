import { PGlite } from '@electric-sql/pglite';
import type { Database, Tx } from './database.ts';
import { parseInt8, runAfterCommit } from './database.ts';

const INT8_OID = 20;
const NUMERIC_OID = 1700;

/** PGlite: real PostgreSQL compiled to WASM, in this process. One connection, so transactions serialize. */
export class PgliteDatabase implements Database {
  readonly kind = 'pglite' as const;
  #db: PGlite;
  #committed = 0;
  #onClose: Array<() => void> = [];

  private constructor(db: PGlite) {
    this.#db = db;
  }

  /**
   * `dataDir` is a directory or `memory://`. `template` is a data-dir tarball (see
   * `dumpTemplate`) to start from instead of running initdb, which costs seconds.
   */
  static async open(dataDir: string, template?: Blob): Promise<PgliteDatabase> {
    const db = new PGlite(dataDir, {
      parsers: { [INT8_OID]: parseInt8, [NUMERIC_OID]: parseInt8 },
      ...(template ? { loadDataDir: template } : {}),
    });
    await db.waitReady;
    return new PgliteDatabase(db);
  }

  get committedTransactions(): number {
    return this.#committed;
  }

  async query<R>(sql: string, params: readonly unknown[] = []): Promise<R[]> {
    const result = await this.#db.query<R>(sql, params as unknown[]);
    this.#committed++; // a statement outside a transaction is one
    return result.rows;
  }

  async transaction<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    const callbacks: Array<() => void | Promise<void>> = [];
    const result = await this.#db.transaction(async (tx) =>
      fn({
        query: async <R>(sql: string, params: readonly unknown[] = []) => (await tx.query<R>(sql, params as unknown[])).rows,
        afterCommit: (cb) => void callbacks.push(cb),
      }),
    );
    this.#committed++;
    await runAfterCommit(callbacks);
    return result;
  }

  async ping(): Promise<void> {
    await this.#db.query('select 1');
  }

  async dumpTemplate(): Promise<Blob> {
    return this.#db.dumpDataDir('none');
  }

  onClose(callback: () => void): void {
    this.#onClose.push(callback);
  }

  async close(): Promise<void> {
    if (!this.#db.closed) await this.#db.close();
    for (const callback of this.#onClose.splice(0)) callback();
  }
}
