import type { Clock } from '../../clock.ts';
import type { Database } from '../../database/database.ts';
import { replaySpan } from '../trace.ts';
import { claimForReplay } from './dead-letters.ts';
import { publishConfirmed, withTimeout } from './publish.ts';
import type { Session } from './session.ts';
import { ATTEMPT_HEADER, names, TRACEPARENT_HEADER } from './topology.ts';

/** The admin's replay of a dead letter, from the `dead_letters` table back to its work queue. */

export interface ReplayOptions {
  prefix: string;
  confirmTimeoutMs: number;
  /** Whether this process consumes `consumer` (then its work queue is known to exist). */
  consumesHere: (consumer: string) => boolean;
}

/**
 * Claims the dead letter in the database and republishes it, attempts reset to 1, straight to
 * the consumer's work queue; the claim commits only after RabbitMQ confirmed the publish. The
 * message goes with the trace it was written in, so its next attempt continues that trace.
 */
export function replayDeadLetter(db: Database, clock: Clock, session: Session, opts: ReplayOptions, consumer: string, messageId: string): Promise<boolean> {
  const queue = names.work(opts.prefix, consumer);
  return db.transaction(async (tx) => {
    const letter = await claimForReplay(tx, consumer, messageId, clock.now());
    if (!letter) return false;
    if (!opts.consumesHere(consumer)) await requireQueue(session, queue, opts.confirmTimeoutMs);
    const span = replaySpan(letter.topic, letter.messageId, letter.traceparent, 'rabbitmq');
    try {
      const traceparent = span?.carrier()?.traceparent ?? letter.traceparent;
      const { outcome } = publishConfirmed(
        session.confirm, names.direct(opts.prefix), queue, Buffer.from(JSON.stringify(letter.payload)),
        {
          messageId: letter.messageId, type: letter.topic, contentType: 'application/json', mandatory: true,
          headers: { [ATTEMPT_HEADER]: 1, ...(traceparent ? { [TRACEPARENT_HEADER]: traceparent } : {}) },
        },
        opts.confirmTimeoutMs,
      );
      const result = await outcome;
      if (!result.ok) throw new Error(`replay of ${consumer}/${messageId} not confirmed by RabbitMQ: ${result.error.message}`);
      return true;
    } catch (error) {
      span?.fail(error);
      throw error;
    } finally {
      span?.end();
    }
  });
}

/** Throws unless RabbitMQ has `queue`. */
async function requireQueue(session: Session, queue: string, timeoutMs: number): Promise<void> {
  await session.onThrowawayChannel(async (channel) => {
    try {
      await withTimeout(channel.checkQueue(queue), timeoutMs, `checking ${queue}`);
    } catch (error) {
      throw new Error(`RabbitMQ has no queue ${queue} (${String(error)})`);
    }
  });
}
