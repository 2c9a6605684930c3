import { readFileSync } from 'node:fs';
import pg from 'pg';
import type { BaselineAudit, BaselineEnv, BenchItem } from './baseline.ts';
import type { Decision, Purchase } from './route.ts';

/** Each run keeps its tables in a schema named after its namespace (see schema.sql). */
const SCHEMA_SQL = readFileSync(new URL('./schema.sql', import.meta.url), 'utf8');
const NAMESPACE = /^[a-z0-9_]{1,40}$/;
const DEFAULT_POOL_SIZE = 20;

/** The namespace becomes an identifier in SQL, a key prefix and a queue name: refuse anything else. */
export function assertNamespace(namespace: string): void {
  if (!NAMESPACE.test(namespace)) throw new RangeError(`namespace must match ${NAMESPACE}, got ${JSON.stringify(namespace)}`);
}

/** A pool whose search_path is the run's schema, so every statement below names no schema. */
export function openPool(env: BaselineEnv): pg.Pool {
  assertNamespace(env.namespace);
  return new pg.Pool({ connectionString: env.databaseUrl, max: env.poolSize ?? DEFAULT_POOL_SIZE, options: `-c search_path=${env.namespace}` });
}

async function withAdmin<T>(env: BaselineEnv, work: (client: pg.Client) => Promise<T>): Promise<T> {
  assertNamespace(env.namespace);
  const client = new pg.Client({ connectionString: env.databaseUrl });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/** Creates the run's schema afresh, with `items` in stock. */
export async function createSchema(env: BaselineEnv, items: readonly BenchItem[]): Promise<void> {
  await withAdmin(env, async (client) => {
    await client.query(`drop schema if exists ${env.namespace} cascade`);
    await client.query(`create schema ${env.namespace}`);
    await client.query(`set search_path = ${env.namespace}`);
    await client.query(SCHEMA_SQL);
    await client.query(
      `insert into stock (id, initial, remaining, per_user_limit)
       select id, stock, stock, per_user_limit from unnest($1::uuid[], $2::int[], $3::int[]) as t(id, stock, per_user_limit)`,
      [items.map((i) => i.id), items.map((i) => i.stock), items.map((i) => i.perUserLimit)],
    );
  });
}

export async function dropSchema(env: BaselineEnv): Promise<void> {
  await withAdmin(env, (client) => client.query(`drop schema if exists ${env.namespace} cascade`));
}

/** Oversold units are counted from the orders, not from `remaining`: that is what buyers were sold. */
const AUDIT = `
  select coalesce(sum(greatest(sold - initial, 0)), 0)::int as oversold,
         coalesce(sum(orders), 0)::int as orders,
         coalesce(sum(sold), 0)::int as units
  from (select s.initial, count(o.id) as orders, coalesce(sum(o.quantity), 0) as sold
        from stock s left join orders o on o.item_id = s.id
        group by s.id, s.initial) as per_item`;

export async function audit(pool: pg.Pool): Promise<BaselineAudit> {
  const { rows } = await pool.query<BaselineAudit>(AUDIT);
  const row = rows[0];
  if (!row) throw new Error('audit returned no row');
  return { oversold: row.oversold, orders: row.orders, units: row.units };
}

/** Runs `work` in one READ COMMITTED transaction, committed only if `commits` says so, else rolled back. */
export async function inTransaction<T>(pool: pg.Pool, work: (client: pg.PoolClient) => Promise<T>, commits: (result: T) => boolean): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('begin');
    const result = await work(client);
    await client.query(commits(result) ? 'commit' : 'rollback');
    client.release();
    return result;
  } catch (error) {
    await client.query('rollback').catch(() => {});
    // A client whose transaction failed is destroyed, not returned to the pool in an unknown state.
    client.release(error instanceof Error ? error : new Error(String(error)));
    throw error;
  }
}

/** Accepted purchases commit; refused ones leave nothing behind. */
export function decideInTransaction(pool: pg.Pool, decide: (client: pg.PoolClient) => Promise<Decision>): Promise<Decision> {
  return inTransaction(pool, decide, (decision) => decision.ok);
}

/** Seed 001's "easy solution": the check and the decrement are one statement. */
export const TAKE_GUARDED = 'update stock set remaining = remaining - $2 where id = $1 and remaining >= $2';

const UNITS_HELD = 'select coalesce(sum(quantity), 0)::int as held from orders where item_id = $1 and user_id = $2';

const INSERT_ORDER = 'insert into orders (id, item_id, user_id, quantity) values ($1, $2, $3, $4)';

export async function unitsHeld(client: pg.PoolClient, purchase: Purchase): Promise<number> {
  const { rows } = await client.query<{ held: number }>(UNITS_HELD, [purchase.item.id, purchase.userId]);
  return rows[0]?.held ?? 0;
}

export async function insertOrder(client: pg.PoolClient, purchase: Purchase): Promise<void> {
  await client.query(INSERT_ORDER, [purchase.orderId, purchase.item.id, purchase.userId, purchase.quantity]);
}

/**
 * The guarded update, then the buyer's limit, then the order, in the caller's transaction. The limit
 * is read after the update on purpose: the update holds the item's row lock until commit, so the
 * count sees every earlier buyer's committed order and two requests of one buyer cannot both pass.
 */
export async function takeGuarded(client: pg.PoolClient, purchase: Purchase): Promise<Decision> {
  const taken = await client.query(TAKE_GUARDED, [purchase.item.id, purchase.quantity]);
  if (taken.rowCount === 0) return { ok: false, reason: 'sold_out' };
  if ((await unitsHeld(client, purchase)) + purchase.quantity > purchase.item.perUserLimit) return { ok: false, reason: 'limit_exceeded' };
  await insertOrder(client, purchase);
  return { ok: true };
}
