import type { Clock } from '../../clock.ts';
import type { Database } from '../../database/database.ts';
import type { Logger } from '../../logger.ts';
import { deadRecordOf } from './codec.ts';
import { recordDeadLetter } from './dead-letters.ts';
import { ack, type Delivery } from './delivery.ts';
import type { StopSignal } from './stop-signal.ts';

/**
 * Dead letters: each consumer's dead-letter queue is consumed by a recorder that copies the
 * message into the `dead_letters` table (migration 003) and acks after the commit. Admins list,
 * inspect and replay from the table: browsing a queue (basic.get + requeue) would reorder it,
 * bump delivery counts and race with other browsers, and finding one message by id would mean
 * reading the whole queue. The queue is the at-least-once hand-over (RabbitMQ's own
 * delivery-limit dead letters arrive there too), the table the index.
 */

export interface RecorderDeps {
  db: Database;
  clock: Clock;
  log: Logger;
  signal: StopSignal;
}

/** Copies a dead letter from the consumer's dead-letter queue into `dead_letters`, then acks. */
export async function recordDelivery(deps: RecorderDeps, consumer: string, delivery: Delivery): Promise<void> {
  const record = deadRecordOf(consumer, delivery.message, deps.clock.now());
  for (let wait = 200; ; wait = Math.min(wait * 2, 10_000)) {
    if (!delivery.session.owns(delivery.channel) || deps.signal.stopping) return;
    try {
      const recorded = await recordDeadLetter(deps.db, record);
      if (recorded) deps.log.error({ consumer, messageId: record.messageId, topic: record.topic, attempts: record.attempts, lastError: record.lastError }, 'message dead-lettered');
      ack(delivery);
      return;
    } catch (error) {
      // Never nack: a dead-letter queue has no dead-letter queue. Hold it and try again.
      deps.log.error({ err: error, consumer, messageId: record.messageId }, 'could not record a dead letter; retrying');
      await deps.signal.pause(wait);
    }
  }
}
