import pg from 'pg';
import type { Database, Tx } from './database.ts';
import { parseInt8, quiet, runAfterCommit } from './database.ts';

const types = {
  getTypeParser: (oid: number, format?: 'text' | 'binary') =>
    oid === 20 || oid === 1700 ? parseInt8 : pg.types.getTypeParser(oid, format),
};

/** PostgreSQL server through a connection pool. */
export class PostgresDatabase implements Database {
  readonly kind = 'postgres' as const;
  #pool: pg.Pool;
  #committed = 0;

  constructor(url: string, poolSize: number) {
    this.#pool = new pg.Pool({ connectionString: url, max: poolSize, types });
    // An idle client's error (server restart, pg_terminate_backend) must not crash the process.
    this.#pool.on('error', () => {});
    // Nor may a checked-out or just-released one's: when a backend is killed, its error and the
    // socket's reset can arrive after the statement that failed, when nobody listens any more
    // (reproduced with pg_terminate_backend under load). The statements themselves still fail.
    this.#pool.on('connect', (client) => client.on('error', () => {}));
  }

  get committedTransactions(): number {
    return this.#committed;
  }

  async query<R>(sql: string, params: readonly unknown[] = []): Promise<R[]> {
    const result = await this.#pool.query(sql, params as unknown[]);
    this.#committed++; // a statement outside a transaction is one
    return result.rows as R[];
  }

  async transaction<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    const client = await this.#pool.connect();
    const callbacks: Array<() => void | Promise<void>> = [];
    let broken = false;
    let released = false;
    // A backend that dies between two statements: the next one fails anyway; the client is not reused.
    const onError = () => { broken = true; };
    client.on('error', onError);
    const inTurn = statementQueue(client);
    try {
      await inTurn('begin');
      const sent: Array<Promise<unknown>> = [];
      const result = await fn({
        query: async <R>(sql: string, params: readonly unknown[] = []) => (await inTurn(sql, params)).rows as R[],
        send: (sql, params = []) => void sent.push(quiet(inTurn(sql, params))),
        afterCommit: (cb) => void callbacks.push(cb),
      });
      // Queued behind the last write: if a write failed, PostgreSQL's COMMIT rolls back, and the write's error is reported.
      const committed = quiet(inTurn('commit'));
      await Promise.all(sent);
      await committed;
      this.#committed++;
      client.off('error', onError);
      client.release(broken);
      released = true;
      await runAfterCommit(callbacks);
      return result;
    } catch (error) {
      await inTurn('rollback').catch(() => { broken = true; });
      throw error;
    } finally {
      if (!released) {
        client.off('error', onError);
        client.release(broken);
      }
    }
  }

  async ping(): Promise<void> {
    await this.#pool.query('select 1');
  }

  async close(): Promise<void> {
    await this.#pool.end();
  }
}

/**
 * One transaction's statements in the order they were issued, each sent once the one before has
 * finished (failed or not): a pipeline of tx.query and tx.send calls would otherwise hand pg a query
 * while another runs, which pg 8 queues with a deprecation warning and pg 9 refuses.
 */
function statementQueue(client: pg.PoolClient): (sql: string, params?: readonly unknown[]) => Promise<pg.QueryResult> {
  let last: Promise<unknown> = Promise.resolve();
  return (sql, params = []) => {
    const run = last.then(() => client.query(sql, params as unknown[]));
    last = run.catch(() => undefined);
    return run;
  };
}
