import { setImmediate, setTimeout as sleep } from 'node:timers/promises';
import type { Clock } from '../clock.ts';
import type { Database, Tx } from '../database/database.ts';
import type { Logger } from '../logger.ts';
import { carrierOf, consumeSpan, publishSpan, replaySpan } from './trace.ts';
import type { Message } from './broker.ts';
import { PassLoop } from './pass-loop.ts';
import { backoffMs, deadLetterOf, failedAttempt, topicMatches, type Broker, type BrokerStats, type DeadLetter, type DeadLetterRow, type QueueStat, type HandledOutcome, type Handler, type SelfManagedHandler, type SelfManagedOptions } from './broker.ts';

type Subscription =
  | { consumer: string; topics: readonly string[]; transactional: true; handler: Handler }
  | { consumer: string; topics: readonly string[]; transactional: false; handler: SelfManagedHandler; concurrency: number };

export interface InProcessBrokerOptions {
  pollMs: number;
  /** Told after each handler run (metrics). */
  onHandled?: (consumer: string, outcome: HandledOutcome) => void;
  maxAttempts: number;
  backoffBaseMs: number;
  /** Outbox rows per relay pass and deliveries per consumer pass (default 1000). */
  batchSize?: number;
  /**
   * True while foreground work (buyers' purchase attempts) is in progress. Deliveries then pause
   * between messages: PGlite runs every statement on the one thread and one transaction at a time,
   * so consumer work during a flood would queue the buyers' commits and answers behind it.
   */
  giveWayTo?: () => boolean;
}

/**
 * Longest a relay pass or a delivery waits for foreground work before going ahead anyway (so
 * consumers never starve). With passes of up to a thousand rows, the backlog of a 20,000-order rush
 * drains in fewer, larger passes (docs/benchmarks.md, item 11: quiet-clean 14 → 7.5–10 s); waiting
 * up to 1 s instead measured the same, and would slow a transactional consumer to a message a
 * second under sustained buying.
 */
const MAX_GIVE_WAY_MS = 200;
const GIVE_WAY_STEP_MS = 2;

interface OutboxRow { seq: number; message_id: string; topic: string; payload: unknown; traceparent: string | null }
interface DeliveryRow { consumer: string; message_id: string; topic: string; payload: unknown; attempts: number; traceparent: string | null }

/** Runs a handler on a delivery, in the consumer span that continues the delivery's trace (tracing on). */
function traced(consumer: string, row: DeliveryRow, attempt: number, handle: (message: Message) => Promise<void>): Promise<void> {
  const message: Message = { id: row.message_id, topic: row.topic, payload: row.payload, attempt };
  return consumeSpan(consumer, message, carrierOf(row.traceparent), () => handle(message));
}

/**
 * The embedded broker: a durable queue in the database itself. The relay moves due outbox rows
 * into one `deliveries` row per subscribed consumer (in one transaction); each consumer handles its
 * deliveries with at-least-once semantics, records the message id with its effect, retries with
 * exponential backoff, and dead-letters after `maxAttempts`.
 */
export class InProcessBroker implements Broker {
  readonly kind = 'in-process' as const;
  #subs: Subscription[] = [];
  #running = false;
  #loop: PassLoop;
  #batch: number;

  private readonly db: Database;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly opts: InProcessBrokerOptions;

  constructor(
    db: Database,
    clock: Clock,
    log: Logger,
    opts: InProcessBrokerOptions,
  ) {
    this.db = db;
    this.clock = clock;
    this.log = log;
    this.opts = opts;
    this.#batch = opts.batchSize ?? 1000;
    this.#loop = new PassLoop(() => this.#pass(), opts.pollMs, (error) => this.log.error({ err: error }, 'broker pass failed'));
  }

  consume(consumer: string, topics: readonly string[], handler: Handler): void {
    this.#subscribe({ consumer, topics, transactional: true, handler });
  }

  consumeSelfManaged(consumer: string, topics: readonly string[], handler: SelfManagedHandler, options: SelfManagedOptions = {}): void {
    this.#subscribe({ consumer, topics, transactional: false, handler, concurrency: Math.max(1, options.concurrency ?? 1) });
  }

  /** Nothing to declare: the in-process broker runs every consumer group in its one process. */
  declareConsumerGroup(): void {}

  #subscribe(sub: Subscription): void {
    if (this.#subs.some((s) => s.consumer === sub.consumer)) throw new Error(`consumer ${sub.consumer} already registered`);
    this.#subs.push(sub);
  }

  async start(): Promise<void> {
    this.#running = true;
    this.#loop.start();
  }

  async stop(): Promise<void> {
    this.#running = false;
    await this.#loop.stop();
  }

  nudge(): void {
    this.#loop.nudge();
  }

  async drain(): Promise<void> {
    while (await this.#loop.runOnce()) { /* until a pass moves nothing */ }
  }

  /** One relay round and one round per consumer; true if anything moved (run by the loop, never twice at once). */
  async #pass(): Promise<boolean> {
    await this.#giveWay(); // the relay is consumers' work too: buyers' commits go first
    let progressed = await this.#relay();
    for (const sub of this.#subs) progressed = (await this.#deliver(sub)) || progressed;
    return progressed;
  }

  async #relay(): Promise<boolean> {
    return this.db.transaction(async (tx) => {
      const now = this.clock.now();
      const rows = await tx.query<OutboxRow>(
        `select seq, message_id, topic, payload, traceparent from outbox
          where published_at is null and deliver_after <= $1
          order by deliver_after, seq limit $2 for update skip locked`,
        [now.toISOString(), this.#batch],
      );
      if (rows.length === 0) return false;
      const consumers: string[] = [];
      const ids: string[] = [];
      const topics: string[] = [];
      const payloads: string[] = [];
      const traces: Array<string | null> = [];
      for (const row of rows) {
        // The relay's span (a moment long: the copy is the publish) parents every consumer's.
        const publish = publishSpan(row.topic, row.message_id, row.traceparent, 'in-process');
        const traceparent = publish?.carrier()?.traceparent ?? row.traceparent;
        publish?.end();
        for (const sub of this.#subs) {
          if (!sub.topics.some((p) => topicMatches(p, row.topic))) continue;
          consumers.push(sub.consumer);
          ids.push(row.message_id);
          topics.push(row.topic);
          payloads.push(JSON.stringify(row.payload));
          traces.push(traceparent);
        }
      }
      if (consumers.length > 0) {
        await tx.query(
          `insert into deliveries (consumer, message_id, topic, payload, status, next_attempt_at, created_at, updated_at, traceparent)
           select c, m, t, p::jsonb, 'pending', $5, $5, $5, tp
             from unnest($1::text[], $2::uuid[], $3::text[], $4::text[], $6::text[]) as d(c, m, t, p, tp)
           on conflict do nothing`,
          [consumers, ids, topics, payloads, now.toISOString(), traces],
        );
      }
      await tx.query('update outbox set published_at = $2 where seq = any($1::bigint[])', [rows.map((r) => r.seq), now.toISOString()]);
      return true;
    });
  }

  async #deliver(sub: Subscription): Promise<boolean> {
    if (!sub.transactional) return this.#deliverSelfManaged(sub);
    const due = await this.db.query<DeliveryRow>(
      `select consumer, message_id, topic, payload, attempts, traceparent from deliveries
        where consumer = $1 and status = 'pending' and next_attempt_at <= $2
        order by next_attempt_at, created_at limit $3`,
      [sub.consumer, this.clock.now().toISOString(), this.#batch],
    );
    for (const row of due) {
      await this.#giveWay();
      await this.#handleOne(sub, row);
    }
    return due.length > 0;
  }

  /**
   * A self-managed consumer's batch: whether each message was already processed comes with the
   * batch (one query, not one per message), and the messages handled are marked done and processed
   * together at the end (one statement, not a transaction per message). A crash before that mark
   * only means a redelivery, which a self-managed handler must take (at-least-once, broker.ts).
   */
  async #deliverSelfManaged(sub: Subscription & { transactional: false }): Promise<boolean> {
    const due = await this.db.query<DeliveryRow & { seen: boolean }>(
      `select d.consumer, d.message_id, d.topic, d.payload, d.attempts, d.traceparent,
              exists (select 1 from processed_messages p where p.consumer = d.consumer and p.message_id = d.message_id) as seen
         from deliveries d
        where d.consumer = $1 and d.status = 'pending' and d.next_attempt_at <= $2
        order by d.next_attempt_at, d.created_at limit $3`,
      [sub.consumer, this.clock.now().toISOString(), this.#batch],
    );
    const done: Array<{ id: string; attempt: number }> = [];
    const handle = async (row: DeliveryRow & { seen: boolean }): Promise<void> => {
      const attempt = row.attempts + 1;
      try {
        if (!row.seen) await traced(sub.consumer, row, attempt, (message) => sub.handler(message));
        done.push({ id: row.message_id, attempt });
        this.opts.onHandled?.(sub.consumer, 'ok');
      } catch (error) {
        await this.#failed(sub, row, attempt, error);
      }
    };
    try {
      // A handler that groups its work is given `concurrency` messages at once (see SelfManagedOptions).
      for (let i = 0; i < due.length; i += sub.concurrency) {
        await this.#giveWay();
        await Promise.all(due.slice(i, i + sub.concurrency).map(handle));
      }
    } finally {
      if (done.length > 0) await this.#markDone(sub.consumer, done);
    }
    return due.length > 0;
  }

  /** Marks handled messages done and records them processed, in one statement (one transaction). */
  async #markDone(consumer: string, done: ReadonlyArray<{ id: string; attempt: number }>): Promise<void> {
    await this.db.query(
      `with marked as (
         update deliveries d set status = 'done', attempts = m.attempt, updated_at = $4
           from unnest($2::uuid[], $3::int[]) as m(id, attempt)
          where d.consumer = $1 and d.message_id = m.id and d.status = 'pending')
       insert into processed_messages (consumer, message_id, processed_at)
       select $1, id, $4 from unnest($2::uuid[]) as m(id)
       on conflict do nothing`,
      [consumer, done.map((d) => d.id), done.map((d) => d.attempt), this.clock.now().toISOString()],
    );
  }

  async #giveWay(): Promise<void> {
    // PGlite answers through microtasks only: without a macrotask turn here, a pass of hundreds of
    // messages would run start to end without the event loop reading a single HTTP request.
    await setImmediate();
    const busy = this.opts.giveWayTo;
    for (let waited = 0; busy?.() && waited < MAX_GIVE_WAY_MS && this.#running; waited += GIVE_WAY_STEP_MS) await sleep(GIVE_WAY_STEP_MS);
  }

  async #handleOne(sub: Subscription & { transactional: true }, row: DeliveryRow): Promise<void> {
    const attempt = row.attempts + 1;
    try {
      const handler = sub.handler;
      await this.db.transaction(async (tx: Tx) => {
        const claimed = await tx.query(
          `update deliveries set status = 'done', attempts = $3, updated_at = $4
            where consumer = $1 and message_id = $2 and status = 'pending' returning 1`,
          [sub.consumer, row.message_id, attempt, this.clock.now().toISOString()],
        );
        if (claimed.length === 0) return; // another worker took it
        const fresh = await tx.query(
          `insert into processed_messages (consumer, message_id, processed_at) values ($1, $2, $3)
           on conflict do nothing returning 1`,
          [sub.consumer, row.message_id, this.clock.now().toISOString()],
        );
        if (fresh.length === 0) return; // effect already committed by an earlier delivery
        await traced(sub.consumer, row, attempt, (message) => handler(tx, message));
      });
      this.opts.onHandled?.(sub.consumer, 'ok');
    } catch (error) {
      await this.#failed(sub, row, attempt, error);
    }
  }

  /** A failed attempt: back off and retry later, or dead-letter (see failedAttempt). */
  async #failed(sub: Subscription, row: DeliveryRow, attempt: number, error: unknown): Promise<void> {
    const { dead, counted } = failedAttempt(error, attempt, this.opts.maxAttempts);
    const next = new Date(this.clock.now().getTime() + backoffMs(attempt, this.opts.backoffBaseMs));
    this.log.warn({ consumer: sub.consumer, messageId: row.message_id, topic: row.topic, attempt, dead, err: error }, 'handler failed');
    this.opts.onHandled?.(sub.consumer, dead ? 'dead' : 'retry');
    await this.db.query(
      `update deliveries set attempts = $3, status = $4, next_attempt_at = $5, last_error = $6, updated_at = $7
        where consumer = $1 and message_id = $2 and status = 'pending'`,
      [sub.consumer, row.message_id, counted ? attempt : row.attempts, dead ? 'dead' : 'pending', next.toISOString(), String(error).slice(0, 2000), this.clock.now().toISOString()],
    );
  }

  async listDeadLetters(limit: number): Promise<DeadLetter[]> {
    const rows = await this.db.query<DeadLetterRow>(
      `select consumer, message_id, topic, payload, attempts, last_error, updated_at as dead_at from deliveries
        where status = 'dead' order by updated_at desc limit $1`,
      [limit],
    );
    return rows.map(deadLetterOf);
  }

  async getDeadLetter(consumer: string, messageId: string): Promise<DeadLetter | undefined> {
    const rows = await this.db.query<DeadLetterRow>(
      `select consumer, message_id, topic, payload, attempts, last_error, updated_at as dead_at from deliveries
        where status = 'dead' and consumer = $1 and message_id = $2`,
      [consumer, messageId],
    );
    return rows[0] && deadLetterOf(rows[0]);
  }

  /**
   * Back to pending, attempts reset. With tracing on, the replay is a publish span in the message's
   * own trace, linked to the request that asked for it, and the next attempt its child (as on RabbitMQ).
   */
  async replayDeadLetter(consumer: string, messageId: string): Promise<boolean> {
    const [dead] = await this.db.query<{ topic: string; traceparent: string | null }>(
      `select topic, traceparent from deliveries where consumer = $1 and message_id = $2 and status = 'dead'`, [consumer, messageId]);
    if (!dead) return false;
    const span = replaySpan(dead.topic, messageId, dead.traceparent ?? undefined, 'in-process');
    try {
      const rows = await this.db.query(
        `update deliveries set status = 'pending', attempts = 0, next_attempt_at = $3, updated_at = $3, traceparent = coalesce($4, traceparent)
          where consumer = $1 and message_id = $2 and status = 'dead' returning 1`,
        [consumer, messageId, this.clock.now().toISOString(), span?.carrier()?.traceparent ?? null],
      );
      this.nudge();
      return rows.length > 0;
    } catch (error) {
      span?.fail(error);
      throw error;
    } finally {
      span?.end();
    }
  }

  async queueDepths(): Promise<QueueStat[]> {
    return (await this.stats()).queues;
  }

  async stats(): Promise<BrokerStats> {
    // One statement (one round trip, one transaction on PGlite's thread). The per-consumer counts each
    // read one partial index (deliveries_due, deliveries_dead): done rows are never read.
    const [row] = await this.db.query<{ outbox: number; oldest: Date | null; queues: string | Array<{ consumer: string; queue: 'work' | 'dead'; n: number }> }>(
      `select (select count(*) from outbox where published_at is null and deliver_after <= $1) as outbox,
              (select min(deliver_after) from outbox where published_at is null and deliver_after <= $1) as oldest,
              (select coalesce(json_agg(q), '[]'::json) from (
                 select consumer, 'work' as queue, count(*)::int as n from deliveries where status = 'pending' and next_attempt_at <= $1 group by consumer
                 union all
                 select consumer, 'dead' as queue, count(*)::int as n from deliveries where status = 'dead' group by consumer) q) as queues`,
      [this.clock.now().toISOString()],
    );
    const perConsumer = typeof row?.queues === 'string' ? (JSON.parse(row.queues) as Exclude<typeof row.queues, string>) : (row?.queues ?? []);
    const count = (queue: 'work' | 'dead', consumer?: string) =>
      perConsumer.filter((r) => r.queue === queue && (consumer === undefined || r.consumer === consumer)).reduce((sum, r) => sum + Number(r.n), 0);
    const queues = this.#subs.map((sub) => ({ consumer: sub.consumer, work: count('work', sub.consumer), dead: count('dead', sub.consumer) }));
    const lagMs = row?.oldest ? this.clock.now().getTime() - new Date(row.oldest).getTime() : 0;
    return { outboxPending: Number(row?.outbox ?? 0), outboxLagSeconds: Math.max(0, lagMs / 1000), deliveriesPending: count('work'), deadLetters: count('dead'), queues };
  }
}
