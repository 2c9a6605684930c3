import type { Clock } from '../../clock.ts';
import type { Database } from '../../database/database.ts';
import type { Handler, Message, SelfManagedHandler } from '../broker.ts';
import type { Subscription } from './subscriptions.ts';

/**
 * Runs a subscription's handler on a message, deduplicated by message id in processed_messages:
 * RabbitMQ delivers at least once (redeliveries, relay rounds whose confirm was unknown, parked
 * copies), and an effect that committed once must not commit again.
 */
export async function runDeduped(db: Database, clock: Clock, sub: Subscription, message: Message): Promise<void> {
  if (sub.transactional) await runTransactional(db, clock, sub.consumer, sub.handler, message);
  else await runSelfManaged(db, clock, sub.consumer, sub.handler, message);
}

/** The message id is recorded in the handler's transaction: the effect and the mark commit together. */
async function runTransactional(db: Database, clock: Clock, consumer: string, handler: Handler, message: Message): Promise<void> {
  await db.transaction(async (tx) => {
    const fresh = await tx.query(
      `insert into processed_messages (consumer, message_id, processed_at) values ($1, $2, $3)
       on conflict do nothing returning 1`,
      [consumer, message.id, clock.now().toISOString()],
    );
    if (fresh.length === 0) return; // effect already committed by an earlier delivery
    await handler(tx, message);
  });
}

/** The message id is recorded after the handler resolved (see SelfManagedHandler: at least once). */
async function runSelfManaged(db: Database, clock: Clock, consumer: string, handler: SelfManagedHandler, message: Message): Promise<void> {
  const seen = await db.query('select 1 from processed_messages where consumer = $1 and message_id = $2', [consumer, message.id]);
  if (seen.length === 0) await handler(message);
  await db.query(
    'insert into processed_messages (consumer, message_id, processed_at) values ($1, $2, $3) on conflict do nothing',
    [consumer, message.id, clock.now().toISOString()],
  );
}
