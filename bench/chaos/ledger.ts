/**
 * A downstream consumer the drill runs itself (in the chaos process, over the cluster's RabbitMQ and
 * PostgreSQL, through flashsale's own broker): it keeps a ledger of `order.created` events and has
 * a bug — it throws for the orders of the buyers it is told to choke on, until it is "fixed". The
 * poison-message and dead-letter-target scenarios watch what the broker does with those messages.
 */
import { EventEmitter } from 'node:events';
import { Writable } from 'node:stream';
import amqp from 'amqplib';
import { pino } from 'pino';
import { systemClock } from '../../src/platform/clock.ts';
import { PostgresDatabase } from '../../src/platform/database/postgres.ts';
import { RabbitMqBroker } from '../../src/platform/broker/rabbitmq.ts';
import { names } from '../../src/platform/broker/rabbitmq/topology.ts';
import type { OrderCreated } from '../../src/order/contracts.ts';

export const LEDGER_CONSUMER = 'chaos-ledger';
export const LEDGER_PREFETCH = 8;

export interface Ledger {
  /** Times each order's event was applied (a correct consumer applies each once). */
  applied: Map<string, number>;
  /** Times the handler ran per order (failed attempts, the replay, duplicates). */
  attempts: Map<string, number>;
  /** From now on the consumer no longer throws. */
  fix(): void;
  /** How many lines the ledger's broker logged that contain `text`. */
  logged(text: string): number;
  /** Resolves once `check` holds, asked again after every line logged and every event applied; rejects after `timeoutMs`. */
  when(what: string, check: () => boolean, timeoutMs: number): Promise<void>;
  workQueue: string;
  deadLetterQueue: string;
  stop(): Promise<void>;
}

export async function startLedger(opts: { databaseUrl: string; amqpUrl: string; prefix: string; chokeOn: ReadonlySet<string>; maxAttempts: number }): Promise<Ledger> {
  const lines: string[] = [];
  const changed = new EventEmitter();
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(...chunk.toString().split('\n').filter(Boolean));
      changed.emit('change');
      done();
    },
  });
  const log = pino({ level: 'info' }, sink);
  const db = new PostgresDatabase(opts.databaseUrl, 4);
  const broker = new RabbitMqBroker(db, systemClock, log, {
    url: opts.amqpUrl, prefix: opts.prefix, prefetch: LEDGER_PREFETCH, confirmTimeoutMs: 5000, maxAttempts: opts.maxAttempts, backoffBaseMs: 100, pollMs: 100,
  });
  let fixed = false;
  const applied = new Map<string, number>();
  const attempts = new Map<string, number>();
  broker.consume(LEDGER_CONSUMER, ['order.created'], async (tx, message) => {
    const { orderId, userId } = message.payload as OrderCreated;
    attempts.set(orderId, (attempts.get(orderId) ?? 0) + 1);
    if (opts.chokeOn.has(userId) && !fixed) throw new Error(`ledger cannot book order ${orderId}`);
    await tx.query('select 1');
    tx.afterCommit(() => {
      applied.set(orderId, (applied.get(orderId) ?? 0) + 1);
      changed.emit('change');
    });
  });
  await broker.start();
  const topology = broker.topology();
  return {
    applied, attempts,
    fix: () => void (fixed = true),
    logged: (text) => lines.filter((line) => line.includes(text)).length,
    when: (what, check, timeoutMs) => new Promise<void>((resolve, reject) => {
      const settle = () => {
        if (!check()) return;
        clearTimeout(timer);
        changed.off('change', settle);
        resolve();
      };
      const timer = setTimeout(() => {
        changed.off('change', settle);
        reject(new Error(`gave up waiting for ${what} after ${timeoutMs / 1000} s`));
      }, timeoutMs);
      changed.on('change', settle);
      settle();
    }),
    workQueue: names.work(opts.prefix, LEDGER_CONSUMER),
    deadLetterQueue: names.dlq(opts.prefix, LEDGER_CONSUMER),
    async stop() {
      await broker.stop();
      await db.close();
      // Only the ledger's own queues: the exchanges are the cluster's, and deleting one takes every
      // binding with it — events relayed before the processes bind again would go nowhere.
      const connection = await amqp.connect(opts.amqpUrl);
      try {
        const channel = await connection.createChannel();
        for (const queue of topology.queues) await channel.deleteQueue(queue.name);
      } finally {
        await connection.close();
      }
    },
  };
}
