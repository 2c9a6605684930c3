import type { Baseline } from './baseline.ts';
import { registerPurchaseRoute } from './route.ts';
import { audit, createSchema, decideInTransaction, dropSchema, openPool, takeGuarded } from './sql.ts';

/**
 * Seed 001's "easy solution": every request is one transaction on the primary, and the stock check
 * and decrement are one guarded UPDATE, so the database's row lock serializes buyers of an item.
 */
export const guardedUpdate: Baseline = {
  name: 'guarded-update',
  description: 'seed 001, easy solution: one PostgreSQL transaction per request, UPDATE … WHERE remaining >= qty, then the order',
  needs: ['postgres'],

  async start(app, env, items) {
    await createSchema(env, items);
    const pool = openPool(env);
    registerPurchaseRoute(app, env, items, (purchase) => decideInTransaction(pool, (client) => takeGuarded(client, purchase)));
    return {
      settle: async () => {},
      audit: () => audit(pool),
      close: () => pool.end(),
    };
  },

  teardown: dropSchema,
};
