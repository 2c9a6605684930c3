/**
 * The database port. Business code sees only this: run SQL, run a transaction.
 * Functions that write take a `Queryable` first so they compose inside a caller's transaction.
 */
export interface Queryable {
  query<R = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<R[]>;
}

/** A transaction. `afterCommit` callbacks run once it committed (never if it rolled back). */
export interface Tx extends Queryable {
  /**
   * Sends a write whose rows nobody needs, without waiting for its answer: statements still run in
   * the order sent and the commit follows the last one; if it fails, the transaction rolls back
   * and fails with its error. Each write awaited costs a round trip — on PGlite's thread a hop
   * through the busy HTTP thread — so a group commit sends its writes and waits once, at commit.
   */
  send(sql: string, params?: readonly unknown[]): void;
  afterCommit(callback: () => void | Promise<void>): void;
}

export interface Database extends Queryable {
  readonly kind: 'pglite' | 'postgres';
  /** Runs `fn` in one transaction: committed if it resolves, rolled back if it throws. */
  transaction<T>(fn: (tx: Tx) => Promise<T>): Promise<T>;
  /** Cheap reachability probe for readiness checks. */
  ping(): Promise<void>;
  /** Transactions committed since open, single statements included (the benchmark's tx-per-order figure). */
  readonly committedTransactions: number;
  close(): Promise<void>;
}

/** int8 and numeric arrive as strings by default; our bigints are money and counts well under 2^53. */
export const parseInt8 = (value: string): number => Number(value);

/** Runs after-commit callbacks; one failing must not stop the others nor fail the committed work. */
export async function runAfterCommit(callbacks: Array<() => void | Promise<void>>): Promise<void> {
  for (const callback of callbacks) {
    try {
      await callback();
    } catch (error) {
      process.emitWarning(`after-commit callback failed: ${String(error)}`);
    }
  }
}

/** Marks a promise as awaited later (a sent write, a pipelined commit): no unhandled rejection meanwhile. */
export function quiet<T>(promise: Promise<T>): Promise<T> {
  promise.catch(() => undefined);
  return promise;
}
