/**
 * The database port. Business code sees only this: run SQL, run a transaction.
 * Functions that write take a `Queryable` first so they compose inside a caller's transaction.
 */
export interface Queryable {
  query<R = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<R[]>;
}

/** A transaction. `afterCommit` callbacks run once it committed (never if it rolled back). */
export interface Tx extends Queryable {
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
