import type { Queryable } from '../../database/database.ts';
import { isUuid } from '../../uuid.ts';
import { deadLetterOf, type DeadLetter, type DeadLetterRow } from '../broker.ts';

/**
 * The `dead_letters` table (migration 003): the browsable copy of every message that reached a
 * consumer's dead-letter queue. Listing, inspecting and replaying read and write here, never the
 * queue itself: browsing a queue with basic.get + requeue reorders it, bumps delivery counts, and
 * races with other browsers.
 */

/** What the recorder writes: the dead letter itself, and the trace its message carried (for the replay). */
export type DeadRecord = DeadLetter & { traceparent?: string | undefined };
type Row = DeadLetterRow;

/**
 * Records a dead letter (idempotent: the dead-letter queue is at-least-once). A message whose
 * effect the consumer already committed (a duplicate copy died after another copy succeeded) is
 * not dead: nothing is recorded. Dying again after a replay reopens the record.
 */
export async function recordDeadLetter(db: Queryable, record: DeadRecord): Promise<boolean> {
  const rows = await db.query(
    `insert into dead_letters (consumer, message_id, topic, payload, attempts, last_error, dead_at, replayed_at, traceparent)
     select $1, $2, $3, $4::jsonb, $5, $6, $7, null, $9
      where not ($8::boolean and exists (
        select 1 from processed_messages where consumer = $1 and message_id = (case when $8::boolean then $2 end)::uuid))
     on conflict (consumer, message_id) do update
       set topic = excluded.topic, payload = excluded.payload, attempts = excluded.attempts,
           last_error = excluded.last_error, dead_at = excluded.dead_at, replayed_at = null, traceparent = excluded.traceparent
     returning 1`,
    [record.consumer, record.messageId, record.topic, JSON.stringify(record.payload ?? null), record.attempts, record.lastError,
      record.deadAt.toISOString(), isUuid(record.messageId), record.traceparent ?? null],
  );
  return rows.length > 0;
}

export async function listDeadLetters(db: Queryable, limit: number): Promise<DeadLetter[]> {
  const rows = await db.query<Row>(
    `select consumer, message_id, topic, payload, attempts, last_error, dead_at from dead_letters
      where replayed_at is null order by dead_at desc, consumer, message_id limit $1`,
    [limit],
  );
  return rows.map(deadLetterOf);
}

export async function getDeadLetter(db: Queryable, consumer: string, messageId: string): Promise<DeadLetter | undefined> {
  const rows = await db.query<Row>(
    `select consumer, message_id, topic, payload, attempts, last_error, dead_at from dead_letters
      where consumer = $1 and message_id = $2 and replayed_at is null`,
    [consumer, messageId],
  );
  return rows[0] && deadLetterOf(rows[0]);
}

/** Marks a dead letter replayed (in the caller's transaction) and returns it, or undefined if it is not dead. */
export async function claimForReplay(db: Queryable, consumer: string, messageId: string, now: Date): Promise<DeadRecord | undefined> {
  const rows = await db.query<Row & { traceparent: string | null }>(
    `update dead_letters set replayed_at = $3
      where consumer = $1 and message_id = $2 and replayed_at is null
      returning consumer, message_id, topic, payload, attempts, last_error, dead_at, traceparent`,
    [consumer, messageId, now.toISOString()],
  );
  return rows[0] && { ...deadLetterOf(rows[0]), traceparent: rows[0].traceparent ?? undefined };
}

export async function countDeadLetters(db: Queryable): Promise<number> {
  const [row] = await db.query<{ n: number }>('select count(*) as n from dead_letters where replayed_at is null');
  return row?.n ?? 0;
}
