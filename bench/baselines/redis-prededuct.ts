import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import amqp, { type Channel, type ChannelModel, type ConfirmChannel, type ConsumeMessage } from 'amqplib';
import { Redis } from 'ioredis';
import type pg from 'pg';
import type { Baseline, BaselineEnv } from './baseline.ts';
import { registerPurchaseRoute, type Decision, type Purchase } from './route.ts';
import { TAKE_GUARDED, audit, createSchema, dropSchema, inTransaction, openPool } from './sql.ts';
import { deleteKeysUnder } from '../../src/platform/redis.ts';

/** Loaded once; ioredis sends EVALSHA and falls back to EVAL when Redis does not know the script yet. */
const PREDEDUCT_LUA = readFileSync(new URL('./redis-prededuct.lua', import.meta.url), 'utf8');

type PredeductRedis = Redis & {
  prededuct(stockKey: string, buyersKey: string, userId: string, quantity: number, limit: number): Promise<unknown>;
};

/** The script's codes (see the header of redis-prededuct.lua); 3, an item Redis does not hold, is a fault. */
const OUTCOMES: Readonly<Record<number, Decision>> = {
  0: { ok: true },
  1: { ok: false, reason: 'sold_out' },
  2: { ok: false, reason: 'limit_exceeded' },
};

/** Messages a consumer may hold unacknowledged: enough to keep the pool busy while it drains. */
const CONSUMER_PREFETCH = 16;
/** Pause before a message whose order could not be written goes back to the queue. */
const RETRY_MS = 100;

/** Hash-tagged by item, so both keys of one decision live in one Redis Cluster slot. */
function keys(env: BaselineEnv, itemId: string): { stock: string; buyers: string } {
  return { stock: `${env.namespace}:{${itemId}}:stock`, buyers: `${env.namespace}:{${itemId}}:buyers` };
}

const queueName = (env: BaselineEnv): string => `${env.namespace}.create-order`;

interface CreateOrder {
  orderId: string;
  userId: string;
  itemId: string;
  quantity: number;
}

function parseCreateOrder(content: Buffer): CreateOrder {
  const value: unknown = JSON.parse(content.toString());
  if (typeof value === 'object' && value !== null && 'orderId' in value && 'userId' in value && 'itemId' in value && 'quantity' in value) {
    const { orderId, userId, itemId, quantity } = value;
    if (typeof orderId === 'string' && typeof userId === 'string' && typeof itemId === 'string' && typeof quantity === 'number') return { orderId, userId, itemId, quantity };
  }
  throw new Error(`malformed create-order message: ${content.toString()}`);
}

/** Counts messages accepted but not yet written, so settle() can wait for the queue to drain. */
class Outstanding {
  #count = 0;
  #idle: Array<() => void> = [];

  add(): void {
    this.#count += 1;
  }

  done(): void {
    this.#count -= 1;
    if (this.#count === 0) for (const resolve of this.#idle.splice(0)) resolve();
  }

  idle(): Promise<void> {
    return this.#count === 0 ? Promise.resolve() : new Promise((resolve) => this.#idle.push(resolve));
  }
}

const INSERT_ONCE = 'insert into orders (id, item_id, user_id, quantity) values ($1, $2, $3, $4) on conflict (id) do nothing';

/**
 * Seed 003's database double-check. The insert comes first and is keyed by the order id, so a
 * redelivered message changes nothing; the guarded update refuses a unit Redis sold but the
 * database does not have (the 201 was already sent: such an order is lost, and the audit shows it).
 */
function createOrder(pool: pg.Pool, order: CreateOrder): Promise<boolean> {
  return inTransaction(pool, async (client) => {
    const inserted = await client.query(INSERT_ONCE, [order.orderId, order.itemId, order.userId, order.quantity]);
    if (inserted.rowCount === 0) return false;
    const taken = await client.query(TAKE_GUARDED, [order.itemId, order.quantity]);
    return taken.rowCount === 1;
  }, (created) => created);
}

async function consumeOne(channel: Channel, pool: pg.Pool, outstanding: Outstanding, msg: ConsumeMessage): Promise<void> {
  let order: CreateOrder;
  try {
    order = parseCreateOrder(msg.content);
  } catch {
    channel.nack(msg, false, false);
    outstanding.done();
    return;
  }
  try {
    await createOrder(pool, order);
    channel.ack(msg);
    outstanding.done();
  } catch {
    // The database may be briefly unreachable: the message goes back to the queue rather than being lost.
    await sleep(RETRY_MS);
    channel.nack(msg);
  }
}

async function startConsumer(connection: ChannelModel, pool: pg.Pool, env: BaselineEnv, outstanding: Outstanding): Promise<void> {
  const channel = await connection.createChannel();
  await channel.prefetch(CONSUMER_PREFETCH);
  await channel.consume(queueName(env), (msg) => msg && void consumeOne(channel, pool, outstanding, msg));
}

/** Resolves once the broker has the message on disk (publisher confirm): only then is the 201 true. */
function publishConfirmed(channel: ConfirmChannel, queue: string, order: CreateOrder): Promise<void> {
  return new Promise((resolve, reject) => {
    channel.sendToQueue(queue, Buffer.from(JSON.stringify(order)), { persistent: true }, (error: unknown) => {
      if (error) reject(error instanceof Error ? error : new Error(`publish not confirmed: ${String(error)}`));
      else resolve();
    });
  });
}

async function openRedis(env: BaselineEnv, purchaseItems: ReadonlyArray<{ id: string; stock: number }>): Promise<PredeductRedis> {
  const redis = new Redis(env.redisUrl, { maxRetriesPerRequest: 1 });
  redis.defineCommand('prededuct', { numberOfKeys: 2, lua: PREDEDUCT_LUA });
  const load = redis.multi();
  for (const item of purchaseItems) {
    const k = keys(env, item.id);
    load.set(k.stock, item.stock).del(k.buyers);
  }
  await load.exec();
  // defineCommand adds the method at run time; this is the one place its type is stated.
  return redis as PredeductRedis;
}

/** Pre-deducts in Redis, then publishes; if the publish fails, the units go back before the error does. */
function prededuct(redis: PredeductRedis, channel: ConfirmChannel, env: BaselineEnv, outstanding: Outstanding) {
  return async (p: Purchase): Promise<Decision> => {
    const k = keys(env, p.item.id);
    const code = await redis.prededuct(k.stock, k.buyers, p.userId, p.quantity, p.item.perUserLimit);
    const decision = typeof code === 'number' ? OUTCOMES[code] : undefined;
    if (!decision) throw new Error(`prededuct script answered ${String(code)} for item ${p.item.id}`);
    if (!decision.ok) return decision;
    outstanding.add();
    try {
      await publishConfirmed(channel, queueName(env), { orderId: p.orderId, userId: p.userId, itemId: p.item.id, quantity: p.quantity });
    } catch (error) {
      outstanding.done();
      await redis.multi().incrby(k.stock, p.quantity).hincrby(k.buyers, p.userId, -p.quantity).exec();
      throw error;
    }
    return decision;
  };
}

async function deleteKeys(env: BaselineEnv): Promise<void> {
  const redis = new Redis(env.redisUrl, { maxRetriesPerRequest: 1 });
  try {
    await deleteKeysUnder(redis, `${env.namespace}:`);
  } finally {
    redis.disconnect();
  }
}

async function deleteQueue(env: BaselineEnv): Promise<void> {
  const connection = await amqp.connect(env.amqpUrl, { noDelay: true });
  try {
    const channel = await connection.createChannel();
    await channel.deleteQueue(queueName(env));
  } finally {
    await connection.close();
  }
}

export const redisPrededuct: Baseline = {
  name: 'redis-prededuct',
  description: 'seed 003: a Redis Lua script pre-deducts stock and the buyer limit, answers 201, and a RabbitMQ consumer writes the order with a database double-check',
  needs: ['postgres', 'redis', 'rabbitmq'],

  async start(app, env, items) {
    await createSchema(env, items);
    const pool = openPool(env);
    const redis = await openRedis(env, items);
    const connection = await amqp.connect(env.amqpUrl, { noDelay: true });
    connection.on('error', () => {});
    const publisher = await connection.createConfirmChannel();
    await publisher.assertQueue(queueName(env), { durable: true });
    const outstanding = new Outstanding();
    await startConsumer(connection, pool, env, outstanding);
    registerPurchaseRoute(app, env, items, prededuct(redis, publisher, env, outstanding));
    return {
      settle: () => outstanding.idle(),
      audit: () => audit(pool),
      async close() {
        await connection.close();
        redis.disconnect();
        await pool.end();
      },
    };
  },

  async teardown(env) {
    await dropSchema(env);
    await deleteKeys(env);
    await deleteQueue(env);
  },
};
