import type { Baseline } from './baseline.ts';
import { registerPurchaseRoute, type Decision, type Purchase } from './route.ts';
import { audit, createSchema, decideInTransaction, dropSchema, insertOrder, openPool, unitsHeld } from './sql.ts';
import type pg from 'pg';

/** No FOR UPDATE: under READ COMMITTED this read sees the last committed value and waits for nobody. */
const READ_REMAINING = 'select remaining from stock where id = $1';
/** No guard: it subtracts whatever the read above allowed. */
const TAKE_UNGUARDED = 'update stock set remaining = remaining - $2 where id = $1';

/**
 * Seed 001's cause 7, kept on purpose so the bench shows the audit catching oversell: while one
 * transaction holds the row between its UPDATE and COMMIT, every other one still reads the old
 * `remaining`, finds enough, and goes on to take it.
 */
async function checkThenTake(client: pg.PoolClient, purchase: Purchase): Promise<Decision> {
  const { rows } = await client.query<{ remaining: number }>(READ_REMAINING, [purchase.item.id]);
  if ((rows[0]?.remaining ?? 0) < purchase.quantity) return { ok: false, reason: 'sold_out' };
  if ((await unitsHeld(client, purchase)) + purchase.quantity > purchase.item.perUserLimit) return { ok: false, reason: 'limit_exceeded' };
  await client.query(TAKE_UNGUARDED, [purchase.item.id, purchase.quantity]);
  await insertOrder(client, purchase);
  return { ok: true };
}

export const checkThenUpdate: Baseline = {
  name: 'check-then-update',
  description: 'seed 001, cause 7: SELECT remaining, then an unguarded UPDATE in a separate statement (READ COMMITTED, no lock): oversells',
  needs: ['postgres'],

  async start(app, env, items) {
    await createSchema(env, items);
    const pool = openPool(env);
    registerPurchaseRoute(app, env, items, (purchase) => decideInTransaction(pool, (client) => checkThenTake(client, purchase)));
    return {
      settle: async () => {},
      audit: () => audit(pool),
      close: () => pool.end(),
    };
  },

  teardown: dropSchema,
};
