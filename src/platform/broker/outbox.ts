import { randomUUID } from 'node:crypto';
import type { Clock } from '../clock.ts';
import type { Queryable, Tx } from '../database/database.ts';
import { tracer, type TraceCarrier } from '../tracing/tracing.ts';

export interface OutgoingEvent {
  topic: string;
  payload: unknown;
  /** Deliver no earlier than this many ms from now (payment deadlines). */
  delayMs?: number;
  /** Set to make the message id deterministic (e.g. one deadline per order). */
  messageId?: string;
  /** The trace the event continues; by default the active span's (none while tracing is off). */
  trace?: TraceCarrier | undefined;
}

/** Writes events to the outbox in the caller's transaction: they exist iff the change commits. */
export async function writeEvents(tx: Queryable, clock: Clock, events: readonly OutgoingEvent[]): Promise<void> {
  if (events.length === 0) return;
  await tx.query(...outboxInsert(clock, events));
}

/** The one statement that writes a transaction's events. */
function outboxInsert(clock: Clock, events: readonly OutgoingEvent[]): [string, unknown[]] {
  const now = clock.now().getTime();
  const ids: string[] = [];
  const topics: string[] = [];
  const payloads: string[] = [];
  const afters: string[] = [];
  const traces: Array<string | null> = [];
  const active = tracer.current()?.traceparent ?? null;
  for (const event of events) {
    traces.push(event.trace?.traceparent ?? active);
    ids.push(event.messageId ?? randomUUID());
    topics.push(event.topic);
    payloads.push(JSON.stringify(event.payload));
    afters.push(new Date(now + (event.delayMs ?? 0)).toISOString());
  }
  return [
    `insert into outbox (message_id, topic, payload, created_at, deliver_after, traceparent)
     select id, topic, payload::jsonb, $5, after, tp
       from unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[], $6::text[]) as e(id, topic, payload, after, tp)
     on conflict (message_id) do nothing`,
    [ids, topics, payloads, afters, new Date(now).toISOString(), traces],
  ];
}

/**
 * Writes a transaction's events to the outbox; the relay is nudged once the transaction commits.
 * The write is sent, not awaited (`Tx.send`): nothing reads it back, and a failure fails the commit.
 */
export type Emit = (tx: Tx, events: readonly OutgoingEvent[]) => Promise<void>;

/** The one emitter, built by the composition root and handed to every component that writes events. */
export function createEmitter(clock: Clock, onCommitted: () => void = () => {}): Emit {
  return async (tx, events) => {
    if (events.length === 0) return;
    tx.send(...outboxInsert(clock, events));
    tx.afterCommit(onCommitted);
  };
}
