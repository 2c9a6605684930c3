import type pg from 'pg';
import type { Baseline } from './baseline.ts';
import { registerPurchaseRoute, type Decision, type Purchase } from './route.ts';
import { audit, createSchema, dropSchema, inTransaction, openPool } from './sql.ts';

/** Seed 002 flushes when a batch is full or its timeout passes, whichever comes first. */
const BATCH_SIZE = 100;
const BATCH_WAIT_MS = 5;

/**
 * The seed reads products without a lock and relies on one batch at a time in its process; the row
 * lock costs a single flusher nothing and keeps the decision right if two servers ever share a table.
 */
const LOCK_STOCK = 'select id, remaining from stock where id = any($1::uuid[]) order by id for update';
const HELD = `
  select item_id, user_id, sum(quantity)::int as held from orders
  where item_id = any($1::uuid[]) and user_id = any($2::text[])
  group by item_id, user_id`;
const TAKE = `
  update stock set remaining = remaining - t.taken
  from unnest($1::uuid[], $2::int[]) as t(id, taken) where stock.id = t.id`;
const INSERT_ORDERS = `
  insert into orders (id, item_id, user_id, quantity)
  select * from unnest($1::uuid[], $2::uuid[], $3::text[], $4::int[])`;

interface Waiting {
  purchase: Purchase;
  resolve(decision: Decision): void;
  reject(error: Error): void;
}

/** Decides in arrival order against the locked stock and what each buyer already holds; only accepted purchases move the counts. */
function allocate(batch: readonly Purchase[], remaining: Map<string, number>, held: Map<string, number>): Decision[] {
  return batch.map((p) => {
    const left = remaining.get(p.item.id) ?? 0;
    if (left < p.quantity) return { ok: false, reason: 'sold_out' };
    const key = `${p.item.id}/${p.userId}`;
    const had = held.get(key) ?? 0;
    if (had + p.quantity > p.item.perUserLimit) return { ok: false, reason: 'limit_exceeded' };
    remaining.set(p.item.id, left - p.quantity);
    held.set(key, had + p.quantity);
    return { ok: true };
  });
}

async function readState(client: pg.PoolClient, batch: readonly Purchase[]): Promise<{ remaining: Map<string, number>; held: Map<string, number> }> {
  const itemIds = [...new Set(batch.map((p) => p.item.id))];
  const stock = await client.query<{ id: string; remaining: number }>(LOCK_STOCK, [itemIds]);
  const held = await client.query<{ item_id: string; user_id: string; held: number }>(HELD, [itemIds, [...new Set(batch.map((p) => p.userId))]]);
  return {
    remaining: new Map(stock.rows.map((r) => [r.id, r.remaining])),
    held: new Map(held.rows.map((r) => [`${r.item_id}/${r.user_id}`, r.held])),
  };
}

async function write(client: pg.PoolClient, accepted: readonly Purchase[]): Promise<void> {
  if (accepted.length === 0) return;
  const taken = new Map<string, number>();
  for (const p of accepted) taken.set(p.item.id, (taken.get(p.item.id) ?? 0) + p.quantity);
  await client.query(TAKE, [[...taken.keys()], [...taken.values()]]);
  await client.query(INSERT_ORDERS, [accepted.map((p) => p.orderId), accepted.map((p) => p.item.id), accepted.map((p) => p.userId), accepted.map((p) => p.quantity)]);
}

/** One transaction decides the whole batch; nobody is answered before it commits. */
function decideBatch(pool: pg.Pool, batch: readonly Purchase[]): Promise<Decision[]> {
  return inTransaction(pool, async (client) => {
    const { remaining, held } = await readState(client, batch);
    const decisions = allocate(batch, remaining, held);
    await write(client, batch.filter((_, i) => decisions[i]?.ok));
    return decisions;
  }, () => true);
}

/** The in-memory queue: one batch in flight at a time, as in the seed; requests arriving meanwhile wait for the next. */
class Batcher {
  readonly #pool: pg.Pool;
  #queue: Waiting[] = [];
  #timer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> | undefined;

  constructor(pool: pg.Pool) {
    this.#pool = pool;
  }

  submit(purchase: Purchase): Promise<Decision> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ purchase, resolve, reject });
      this.#schedule();
    });
  }

  /** Resolves once nothing is queued or being decided. */
  async idle(): Promise<void> {
    while (this.#flushing || this.#queue.length > 0) await (this.#flushing ?? new Promise((r) => setTimeout(r, BATCH_WAIT_MS)));
  }

  #schedule(): void {
    if (this.#flushing || this.#queue.length === 0) return;
    if (this.#queue.length >= BATCH_SIZE) this.#flush();
    else this.#timer ??= setTimeout(() => this.#flush(), BATCH_WAIT_MS);
  }

  #flush(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const batch = this.#queue.splice(0, BATCH_SIZE);
    this.#flushing = this.#decide(batch).finally(() => {
      this.#flushing = undefined;
      this.#schedule();
    });
  }

  async #decide(batch: readonly Waiting[]): Promise<void> {
    try {
      const decisions = await decideBatch(this.#pool, batch.map((w) => w.purchase));
      batch.forEach((w, i) => w.resolve(decisions[i] ?? { ok: false, reason: 'sold_out' }));
    } catch (error) {
      for (const w of batch) w.reject(error instanceof Error ? error : new Error(String(error)));
    }
  }
}

export const batched: Baseline = {
  name: 'batched',
  description: `seed 002: requests wait in memory until ${BATCH_SIZE} or ${BATCH_WAIT_MS} ms, then one transaction allocates the batch in arrival order`,
  needs: ['postgres'],

  async start(app, env, items) {
    await createSchema(env, items);
    const pool = openPool(env);
    const batcher = new Batcher(pool);
    registerPurchaseRoute(app, env, items, (purchase) => batcher.submit(purchase));
    return {
      settle: () => batcher.idle(),
      audit: () => audit(pool),
      async close() {
        await batcher.idle();
        await pool.end();
      },
    };
  },

  teardown: dropSchema,
};
