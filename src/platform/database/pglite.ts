import { PGlite } from '@electric-sql/pglite';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Database, Tx } from './database.ts';
import { parseInt8, quiet, runAfterCommit } from './database.ts';

const INT8_OID = 20;
const NUMERIC_OID = 1700;

/**
 * PGlite touches all of shared_buffers at start (128 MB by default, in the process's RSS); a flash
 * sale's working set is a few MB of hot rows, so 32 MB is ample and keeps the embedded server small.
 */
const POSTGRESQL_CONF = ['shared_buffers = 16MB'];

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
    if (!template && !dataDir.startsWith('memory://')) await initdbApart(dataDir);
    const db = new PGlite(dataDir, {
      parsers: { [INT8_OID]: parseInt8, [NUMERIC_OID]: parseInt8 },
      postgresqlconf: POSTGRESQL_CONF,
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
    const result = await this.#db.transaction(async (tx) => {
      const sent: Array<Promise<unknown>> = [];
      const value = await fn({
        query: async <R>(sql: string, params: readonly unknown[] = []) => (await tx.query<R>(sql, params as unknown[])).rows,
        send: (sql, params = []) => void sent.push(quiet(tx.query(sql, params as unknown[]))),
        afterCommit: (cb) => void callbacks.push(cb),
      });
      await Promise.all(sent); // PGlite commits when this callback resolves
      return value;
    });
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

/**
 * Creates a new data directory (initdb) in a short-lived child process. initdb runs its own WASM
 * instance, whose ~500 MB stay in the RSS of the process that ran it (measured: a fresh directory
 * opens at ~850 MB, an existing one at ~250 MB); apart, the server never carries them.
 */
async function initdbApart(dataDir: string): Promise<void> {
  if (existsSync(join(dataDir, 'PG_VERSION'))) return;
  const pglite = import.meta.resolve('@electric-sql/pglite');
  const script = `const { PGlite } = await import(${JSON.stringify(pglite)});
const db = new PGlite(process.argv[1]); await db.waitReady; await db.close();`;
  await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script, dataDir]);
}
