import type { Config } from '../config.ts';
import type { Database } from './database.ts';
import { PgliteThreadDatabase } from './pglite-thread.ts';
import { PostgresDatabase } from './postgres.ts';
import { lockDirectory } from '../pid-lock.ts';

export type { Database, Queryable, Tx } from './database.ts';
export { migrate } from './migrate.ts';

/** PostgreSQL when DATABASE_URL is set, else PGlite in DATA_DIR, in a worker thread of its own. */
export async function openDatabase(config: Pick<Config, 'DATABASE_URL' | 'DATA_DIR' | 'DATABASE_POOL_SIZE'>): Promise<Database> {
  if (config.DATABASE_URL) return new PostgresDatabase(config.DATABASE_URL, config.DATABASE_POOL_SIZE);
  if (config.DATA_DIR.startsWith('memory://')) return PgliteThreadDatabase.open(config.DATA_DIR);
  const unlock = lockDirectory(config.DATA_DIR, 'flashsale.pid', 'the embedded database', 'DATA_DIR');
  try {
    const db = await PgliteThreadDatabase.open(config.DATA_DIR);
    db.onClose(unlock);
    return db;
  } catch (error) {
    unlock();
    throw error;
  }
}

/** `select <key> as key, count(*) as n … group by …` as a record (metrics: orders by status and the like). */
export async function countBy(q: import('./database.ts').Queryable, sql: string, params: unknown[] = []): Promise<Record<string, number>> {
  const rows = await q.query<{ key: string; n: number | string }>(sql, params);
  return Object.fromEntries(rows.map((r) => [r.key, Number(r.n)]));
}
