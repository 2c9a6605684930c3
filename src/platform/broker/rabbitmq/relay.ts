import type { Clock } from '../../clock.ts';
import type { Database, Tx } from '../../database/database.ts';
import type { Logger } from '../../logger.ts';
import { publishConfirmed, waitForDrain, type PublishOutcome } from './publish.ts';
import type { Session } from './session.ts';
import { publishSpan } from '../trace.ts';
import { TRACEPARENT_HEADER } from './topology.ts';

/**
 * The outbox relay: due outbox rows (`for update skip locked`, so any number of processes relay)
 * are published to the topic exchange with publisher confirms; a row is marked published only after
 * its confirm. A confirm that does not come within confirmTimeoutMs is unknown: the row stays and
 * goes again next round, and consumers dedupe by message id.
 */

export interface RelayOptions {
  /** The topic exchange every event goes to (routing key = topic). */
  exchange: string;
  /** Outbox rows per round. */
  batchSize: number;
  confirmTimeoutMs: number;
}

interface OutboxRow { seq: number; message_id: string; topic: string; body: string; traceparent: string | null }

/** One round: publish due rows with confirms, mark the confirmed ones. True if any was sent. */
export function relayDueRows(db: Database, clock: Clock, log: Logger, session: Session, opts: RelayOptions): Promise<boolean> {
  return db.transaction(async (tx: Tx) => {
    const now = clock.now();
    const rows = await lockDueRows(tx, now, opts.batchSize);
    if (rows.length === 0) return false;
    const results = await publishRows(session, rows, now, opts);
    const sent = rows.filter((_, i) => results[i]?.ok).map((r) => r.seq);
    if (sent.length > 0) await tx.query('update outbox set published_at = $2 where seq = any($1::bigint[])', [sent, now.toISOString()]);
    warnIfUnconfirmed(log, results);
    return sent.length > 0;
  });
}

function lockDueRows(tx: Tx, now: Date, batchSize: number): Promise<OutboxRow[]> {
  return tx.query<OutboxRow>(
    `select seq, message_id, topic, payload::text as body, traceparent from outbox
      where published_at is null and deliver_after <= $1
      order by deliver_after, seq limit $2 for update skip locked`,
    [now.toISOString(), batchSize],
  );
}

/** Publishes every row, pausing while the socket buffer is full, and waits for all the confirms. */
async function publishRows(session: Session, rows: readonly OutboxRow[], now: Date, opts: RelayOptions): Promise<PublishOutcome[]> {
  const outcomes = [];
  for (const row of rows) {
    // The publish span lasts until RabbitMQ's confirm; the message carries it as the consumers' parent.
    const span = publishSpan(row.topic, row.message_id, row.traceparent, 'rabbitmq');
    const traceparent = span?.carrier()?.traceparent ?? row.traceparent;
    const { writable, outcome } = publishConfirmed(
      session.confirm, opts.exchange, row.topic, Buffer.from(row.body),
      {
        messageId: row.message_id, type: row.topic, contentType: 'application/json', timestamp: Math.floor(now.getTime() / 1000), appId: 'flashsale',
        ...(traceparent ? { headers: { [TRACEPARENT_HEADER]: traceparent } } : {}),
      },
      opts.confirmTimeoutMs,
    );
    outcomes.push(span ? outcome.then((result) => {
      if (!result.ok) span.fail(result.error);
      span.end();
      return result;
    }) : outcome);
    if (!writable) await waitForDrain(session.confirm, opts.confirmTimeoutMs);
  }
  return Promise.all(outcomes);
}

function warnIfUnconfirmed(log: Logger, results: readonly PublishOutcome[]): void {
  const failed = results.filter((r) => !r.ok);
  if (failed.length === 0) return;
  const first = failed[0]!;
  log.warn(
    { failed: failed.length, timedOut: failed.filter((r) => !r.ok && r.reason === 'timeout').length, err: first.ok ? undefined : first.error },
    'outbox rows not confirmed by RabbitMQ: they stay unpublished and are sent again (consumers dedupe)',
  );
}
