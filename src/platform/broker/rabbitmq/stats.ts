import type { Queryable } from '../../database/database.ts';
import type { BrokerStats, QueueStat } from '../broker.ts';
import { countDeadLetters } from './dead-letters.ts';
import type { Session } from './session.ts';
import { names } from './topology.ts';

/** What stats() and drain() count: the outbox and dead_letters in the database, the queues in RabbitMQ. */

/** Ready messages in the work queues and the dead-letter queues of this process's consumers. */
export interface QueueDepths { work: number; dead: number; queues: QueueStat[] }

/** Ready messages in this process's work queues and dead-letter queues (see Session.readyCount). */
export async function queueDepths(session: Session, prefix: string, consumers: ReadonlyArray<{ consumer: string }>, timeoutMs: number): Promise<QueueDepths> {
  let work = 0;
  let dead = 0;
  const queues: QueueStat[] = [];
  try {
    for (const { consumer } of consumers) {
      const stat = { consumer, work: await session.readyCount(names.work(prefix, consumer), timeoutMs), dead: await session.readyCount(names.dlq(prefix, consumer), timeoutMs) };
      queues.push(stat);
      work += stat.work;
      dead += stat.dead;
    }
  } catch (error) {
    // An RPC that got no answer leaves the channel unusable; a missing queue closed it. Start over.
    session.fail(error instanceof Error ? error : new Error(String(error)));
    throw error;
  }
  return { work, dead, queues };
}

/** Outbox rows due now and not yet relayed. */
export async function dueOutboxRows(db: Queryable, now: Date): Promise<number> {
  const [row] = await db.query<{ due: number }>(
    'select count(*) as due from outbox where published_at is null and deliver_after <= $1',
    [now.toISOString()],
  );
  return row?.due ?? 0;
}

/**
 * The broker's stats. `depths` is asked after the outbox (it throws when RabbitMQ is not
 * connected), `inFlight` (deliveries this process holds in its workers) after the depths.
 */
export async function collectStats(db: Queryable, now: Date, depths: () => Promise<QueueDepths>, inFlight: () => number): Promise<BrokerStats> {
  const [row] = await db.query<{ outbox: number; oldest: Date | null }>(
    `select count(*) as outbox, min(deliver_after) as oldest from outbox where published_at is null and deliver_after <= $1`,
    [now.toISOString()],
  );
  const queues = await depths();
  const held = inFlight();
  const lagMs = row?.oldest ? now.getTime() - row.oldest.getTime() : 0;
  return {
    outboxPending: row?.outbox ?? 0,
    outboxLagSeconds: Math.max(0, lagMs / 1000),
    deliveriesPending: queues.work + held,
    deadLetters: (await countDeadLetters(db)) + queues.dead,
    queues: queues.queues,
  };
}
