import amqp, { type Channel, type ChannelModel, type ConsumeMessage } from 'amqplib';
import type pg from 'pg';
import type { Baseline, BaselineEnv, BenchItem } from './baseline.ts';
import { registerPurchaseRoute, type Decision, type Purchase } from './route.ts';
import { audit, createSchema, decideInTransaction, dropSchema, openPool, takeGuarded } from './sql.ts';

/** RabbitMQ's pseudo-queue for RPC replies: no reply queue to declare or delete. */
const DIRECT_REPLY_TO = 'amq.rabbitmq.reply-to';

/** What the HTTP handler asks an item's consumer ("ATC message" in seed 001). */
interface AtcRequest {
  orderId: string;
  userId: string;
  quantity: number;
}

/** A consumer that failed answers `error`, so the waiting request fails (500) instead of hanging. */
type AtcReply = Decision | { ok: false; reason: 'error' };

/** One queue per item: its only consumer is the only writer of that item's stock row. */
const queueName = (env: BaselineEnv, item: BenchItem): string => `${env.namespace}.atc.${item.id}`;

function parseRequest(content: Buffer): AtcRequest {
  const value: unknown = JSON.parse(content.toString());
  if (typeof value === 'object' && value !== null && 'orderId' in value && 'userId' in value && 'quantity' in value) {
    const { orderId, userId, quantity } = value;
    if (typeof orderId === 'string' && typeof userId === 'string' && typeof quantity === 'number') return { orderId, userId, quantity };
  }
  throw new Error(`malformed ATC request: ${content.toString()}`);
}

function parseReply(content: Buffer): AtcReply {
  const value: unknown = JSON.parse(content.toString());
  if (typeof value === 'object' && value !== null && 'ok' in value) {
    if (value.ok === true) return { ok: true };
    const reason = 'reason' in value ? value.reason : undefined;
    if (reason === 'sold_out' || reason === 'limit_exceeded' || reason === 'error') return { ok: false, reason };
  }
  throw new Error(`malformed ATC reply: ${content.toString()}`);
}

/** The HTTP side: publishes each request and waits for its consumer's reply (seed 001's "main consumer"). */
class AtcClient {
  readonly #channel: Channel;
  readonly #waiting = new Map<string, { resolve(d: Decision): void; reject(e: Error): void }>();

  private constructor(channel: Channel) {
    this.#channel = channel;
  }

  static async open(connection: ChannelModel): Promise<AtcClient> {
    const channel = await connection.createChannel();
    const client = new AtcClient(channel);
    // Direct reply-to needs the consumer on the publishing channel, before the first publish.
    await channel.consume(DIRECT_REPLY_TO, (msg) => msg && client.#answer(msg), { noAck: true });
    return client;
  }

  ask(queue: string, request: AtcRequest): Promise<Decision> {
    return new Promise((resolve, reject) => {
      this.#waiting.set(request.orderId, { resolve, reject });
      // A false return only means amqplib buffers the message: it is still sent, in order.
      this.#channel.sendToQueue(queue, Buffer.from(JSON.stringify(request)), { replyTo: DIRECT_REPLY_TO, correlationId: request.orderId });
    });
  }

  failAll(error: Error): void {
    for (const waiter of this.#waiting.values()) waiter.reject(error);
    this.#waiting.clear();
  }

  #answer(msg: ConsumeMessage): void {
    const id: unknown = msg.properties.correlationId;
    const waiter = typeof id === 'string' ? this.#waiting.get(id) : undefined;
    if (!waiter || typeof id !== 'string') return;
    this.#waiting.delete(id);
    try {
      const reply = parseReply(msg.content);
      if (reply.ok || reply.reason !== 'error') waiter.resolve(reply);
      else waiter.reject(new Error('the ATC consumer failed'));
    } catch (error) {
      waiter.reject(error instanceof Error ? error : new Error(String(error)));
    }
  }
}

async function handleOne(channel: Channel, pool: pg.Pool, item: BenchItem, msg: ConsumeMessage): Promise<void> {
  let reply: AtcReply;
  try {
    const request = parseRequest(msg.content);
    const purchase: Purchase = { ...request, item };
    reply = await decideInTransaction(pool, (client) => takeGuarded(client, purchase));
  } catch {
    reply = { ok: false, reason: 'error' };
  }
  const replyTo: unknown = msg.properties.replyTo;
  if (typeof replyTo === 'string') channel.sendToQueue(replyTo, Buffer.from(JSON.stringify(reply)), { correlationId: msg.properties.correlationId });
  channel.ack(msg);
}

/**
 * Prefetch 1 and the ack after the reply: the broker hands this consumer the next request only once
 * the last is committed, so an item's requests are decided strictly one at a time. The queue is
 * exclusive to this connection: the broker deletes it when the baseline closes or dies.
 */
async function startConsumer(connection: ChannelModel, pool: pg.Pool, env: BaselineEnv, item: BenchItem): Promise<void> {
  const channel = await connection.createChannel();
  await channel.prefetch(1);
  const queue = queueName(env, item);
  await channel.assertQueue(queue, { exclusive: true, durable: false });
  await channel.consume(queue, (msg) => msg && void handleOne(channel, pool, item, msg));
}

export const serializedConsumer: Baseline = {
  name: 'serialized-consumer',
  description: "seed 001's proposal: the handler publishes to RabbitMQ and waits; one consumer per item decides its requests one at a time",
  needs: ['postgres', 'rabbitmq'],

  async start(app, env, items) {
    await createSchema(env, items);
    const pool = openPool(env);
    const connection = await amqp.connect(env.amqpUrl, { noDelay: true });
    const atc = await AtcClient.open(connection);
    connection.on('error', () => {});
    connection.on('close', () => atc.failAll(new Error('RabbitMQ connection closed')));
    for (const item of items) await startConsumer(connection, pool, env, item);
    registerPurchaseRoute(app, env, items, (p) => atc.ask(queueName(env, p.item), { orderId: p.orderId, userId: p.userId, quantity: p.quantity }));
    return {
      // Every 201 was answered after its consumer committed: nothing is left pending.
      settle: async () => {},
      audit: () => audit(pool),
      async close() {
        await connection.close();
        await pool.end();
      },
    };
  },

  // The queues are exclusive to the baseline's connection and went with it.
  teardown: dropSchema,
};
