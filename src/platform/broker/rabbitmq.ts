import type { Channel, ChannelModel, ConsumeMessage } from 'amqplib';
import type { Clock } from '../clock.ts';
import type { Database } from '../database/database.ts';
import type { Logger } from '../logger.ts';
import type { Broker, BrokerStats, DeadLetter, Handler, Message, SelfManagedHandler } from './broker.ts';
import { attemptOf, deadRecordOf, decode, messageIdOf, topicOf } from './rabbitmq/codec.ts';
import { getDeadLetter, listDeadLetters, recordDeadLetter } from './rabbitmq/dead-letters.ts';
import { publishConfirmed } from './rabbitmq/publish.ts';
import { PassLoop } from './pass-loop.ts';
import { relayDueRows } from './rabbitmq/relay.ts';
import { replayDeadLetter } from './rabbitmq/replay.ts';
import { collectStats, dueOutboxRows, queueDepths, type QueueDepths } from './rabbitmq/stats.ts';
import { Session } from './rabbitmq/session.ts';
import {
  ATTEMPT_HEADER, LAST_ERROR_HEADER, buildTopology, declareTopology, names, retryTtl, validateConsumerName, validatePattern,
  TopologyMismatchError, type Topology,
} from './rabbitmq/topology.ts';
import { Worker } from './rabbitmq/worker.ts';

export interface RabbitMqBrokerOptions {
  /** AMQP_URL. Heartbeat 15 s unless the URL sets `heartbeat`. */
  url: string;
  /** Prefix of every exchange and queue name (default `flashsale`): two prefixes never collide. */
  prefix?: string;
  /** AMQP_PREFETCH: unacked deliveries a consumer holds at once. */
  prefetch: number;
  /** AMQP_CONFIRM_TIMEOUT_MS: a publisher confirm (and any AMQP round trip) not answered within this is "unknown". */
  confirmTimeoutMs: number;
  /** BROKER_MAX_ATTEMPTS: handler attempts before the consumer's dead-letter queue. */
  maxAttempts: number;
  /** BROKER_BACKOFF_BASE_MS: retry n waits base·2^(n-1) (capped at 60 s) in a fixed-TTL retry queue. */
  backoffBaseMs: number;
  /** BROKER_POLL_MS: how often the outbox relay looks for due rows when not nudged. */
  pollMs: number;
  /** Outbox rows per relay round (default 200). */
  batchSize?: number;
  /**
   * x-delivery-limit of every work queue (default 20): deliveries without an ack (a handler that
   * crashes its process, restarts with messages in flight) before RabbitMQ dead-letters the message.
   * A queue argument: changing it for existing queues needs a new prefix or a queue migration.
   */
  deliveryLimit?: number;
  /** Handlers of one consumer group running at once in this process (default 1: in order, like the in-process broker). */
  concurrency?: number;
  /** Reconnect backoff after a lost connection or channel (default 100 ms doubling to 5 s). */
  reconnectMinMs?: number;
  reconnectMaxMs?: number;
}

type Subscription =
  | { consumer: string; topics: readonly string[]; transactional: true; handler: Handler }
  | { consumer: string; topics: readonly string[]; transactional: false; handler: SelfManagedHandler };

interface Delivery {
  session: Session;
  channel: Channel;
  message: ConsumeMessage;
}

/** A retry we parked in a TTL queue: drain() waits for it once its TTL has passed. */
const STALE_RETRY_MS = 60_000;

/**
 * The distributed broker: RabbitMQ with quorum queues, over the same transactional outbox.
 *
 * - Relay: due outbox rows (`for update skip locked`, so any number of processes relay) are
 *   published to the topic exchange with publisher confirms; a row is marked published only after
 *   its confirm. A confirm that does not come within confirmTimeoutMs is unknown: the row stays
 *   and goes again next round, and consumers dedupe by message id.
 * - Delays (payment deadlines): a delayed outbox row simply waits in the outbox until it is due.
 *   Chosen over fixed-TTL delay queues because the deadline is per sale (payment_window_s varies),
 *   and a TTL queue holds one delay only (a quorum queue expires at its head, so mixed TTLs block
 *   each other) — that would be one queue per distinct window, created at run time. The outbox row
 *   is already durable and replicated with the database, committed atomically with the order, is
 *   visible to the audit, and follows the injected Clock, so tests move deadlines without waiting.
 *   Cost: the relay polls (BROKER_POLL_MS) an indexed `deliver_after` range.
 * - Consumers: one durable quorum queue per consumer group, bound to the topic exchange by its
 *   patterns; manual ack only after the effect committed (the message id is recorded in
 *   processed_messages in the handler's transaction, or after a self-managed handler resolved).
 * - Retries: a failed attempt is republished (with confirm) to the consumer's retry queue whose
 *   fixed TTL is the backoff, which dead-letters it back to the work queue; the attempt number
 *   travels in a header. After maxAttempts it goes to the consumer's dead-letter queue instead.
 *   x-delivery-limit on the work queue is the safety net for crash loops (no ack, no nack).
 * - Dead letters: each consumer's dead-letter queue is consumed by a recorder that copies the
 *   message into the `dead_letters` table (migration 003) and acks after the commit. Admins list,
 *   inspect and replay from the table: browsing a queue (basic.get + requeue) would reorder it,
 *   bump delivery counts and race with other browsers, and finding one message by id would mean
 *   reading the whole queue. The queue is the at-least-once hand-over (RabbitMQ's own
 *   delivery-limit dead letters arrive there too), the table the index.
 * - Connections: see Session. Any lost connection or channel → a new session with backoff, the
 *   topology declared again (idempotent: same arguments every time).
 */
export class RabbitMqBroker implements Broker {
  readonly kind = 'rabbitmq' as const;
  #subs: Subscription[] = [];
  /** Groups other processes consume: their queues are declared here too, never consumed. */
  #declared: Array<{ consumer: string; topics: readonly string[] }> = [];
  #topology: Topology | undefined;
  #session: Session | undefined;
  #started = false;
  #stopping = false;
  #opening: Promise<void> | undefined;
  #reconnectTimer: NodeJS.Timeout | undefined;
  #reconnectDelay: number;
  #relayLoop: PassLoop;
  #workers = new Map<string, Worker<Delivery>>();
  #recorders = new Map<string, Worker<Delivery>>();
  #retries = new Map<string, number>();
  #wake: Array<() => void> = [];
  readonly #prefix: string;
  readonly #batch: number;
  readonly #deliveryLimit: number;
  readonly #concurrency: number;

  constructor(
    private readonly db: Database,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly opts: RabbitMqBrokerOptions,
  ) {
    this.#prefix = opts.prefix ?? 'flashsale';
    if (!/^[A-Za-z0-9_:-]{1,60}$/.test(this.#prefix)) throw new Error(`AMQP prefix ${JSON.stringify(this.#prefix)} must be 1-60 characters of [A-Za-z0-9_:-]`);
    this.#batch = opts.batchSize ?? 200;
    this.#deliveryLimit = opts.deliveryLimit ?? 20;
    this.#concurrency = opts.concurrency ?? 1;
    this.#reconnectDelay = opts.reconnectMinMs ?? 100;
    this.#relayLoop = new PassLoop(() => this.#relay(), opts.pollMs, (error) => this.log.error({ err: error }, 'outbox relay round failed'));
  }

  consume(consumer: string, topics: readonly string[], handler: Handler): void {
    this.#subscribe({ consumer, topics, transactional: true, handler });
  }

  consumeSelfManaged(consumer: string, topics: readonly string[], handler: SelfManagedHandler): void {
    this.#subscribe({ consumer, topics, transactional: false, handler });
  }

  declareConsumerGroup(consumer: string, topics: readonly string[]): void {
    if (this.#started) throw new Error('declare consumer groups before start()');
    if (this.#subs.some((s) => s.consumer === consumer) || this.#declared.some((d) => d.consumer === consumer)) return;
    this.#declared.push({ consumer, topics });
  }

  #subscribe(sub: Subscription): void {
    if (this.#started) throw new Error(`consumer ${sub.consumer}: subscribe before start()`);
    if (this.#subs.some((s) => s.consumer === sub.consumer)) throw new Error(`consumer ${sub.consumer} already registered`);
    validateConsumerName(sub.consumer);
    for (const topic of sub.topics) validatePattern(topic);
    this.#subs.push(sub);
  }

  /** Every exchange and queue this broker declares, with its arguments (for operators and test cleanup). */
  topology(): Topology {
    return buildTopology(
      { prefix: this.#prefix, maxAttempts: this.opts.maxAttempts, backoffBaseMs: this.opts.backoffBaseMs, deliveryLimit: this.#deliveryLimit },
      // Every process declares every group's queues: an event published before its consumer ever
      // ran must wait in that queue, not be dropped by an exchange with nothing bound.
      [...this.#subs, ...this.#declared.filter((d) => !this.#subs.some((s) => s.consumer === d.consumer))],
    );
  }

  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    this.#stopping = false;
    this.#topology = this.topology();
    for (const sub of this.#subs) {
      this.#workers.set(sub.consumer, new Worker(this.#concurrency, (d) => this.#handle(sub, d).catch((e: unknown) => this.#unexpected(sub, d, e))));
      this.#recorders.set(sub.consumer, new Worker(1, (d) => this.#record(sub, d).catch((e: unknown) => this.#unexpected(sub, d, e))));
    }
    try {
      await this.#open();
    } catch (error) {
      this.#started = false;
      clearTimeout(this.#reconnectTimer);
      this.#reconnectTimer = undefined;
      throw error instanceof TopologyMismatchError ? error : new Error(`RabbitMQ: could not connect to ${redact(this.opts.url)}: ${String(error)}`, { cause: error });
    }
    this.#relayLoop.start();
  }

  async stop(): Promise<void> {
    if (!this.#started) return;
    this.#stopping = true;
    const relayStopped = this.#relayLoop.stop();
    clearTimeout(this.#reconnectTimer);
    for (const wake of this.#wake.splice(0)) wake();
    await this.#opening?.catch(() => {});
    await relayStopped;
    const session = this.#session;
    // Cancel first, so no new deliveries arrive; deliveries waiting in a worker stay unacked and
    // go back to their queue when the channel closes.
    await session?.cancelConsumers(this.opts.confirmTimeoutMs);
    for (const worker of [...this.#workers.values(), ...this.#recorders.values()]) worker.clearWaiting();
    await Promise.all([...this.#workers.values(), ...this.#recorders.values()].map((w) => w.idle()));
    this.#session = undefined;
    await session?.close();
    this.#workers.clear();
    this.#recorders.clear();
    this.#retries.clear();
    this.#started = false;
  }

  nudge(): void {
    this.#relayLoop.nudge();
  }

  /**
   * Resolves once nothing is due: no due outbox row, every work and dead-letter queue of this
   * process's consumers empty (asked on each consumer's own channel, see Session.readyCount), no
   * delivery waiting or in a handler, and no retry whose TTL has passed still on its way back.
   * Quiet must hold twice in a row, a few ms apart, as a margin. For tests and the CLI; it only
   * sees this process's consumers (competing consumers elsewhere drain on their own).
   */
  async drain(): Promise<void> {
    if (!this.#started) throw new Error('drain() needs a started broker');
    for (;;) {
      while (await this.#relayLoop.runOnce()) { /* relay until the outbox has nothing due */ }
      if (await this.#quiet()) {
        await sleep(15);
        if (await this.#quiet()) return;
      } else {
        await sleep(10);
      }
    }
  }

  async listDeadLetters(limit: number): Promise<DeadLetter[]> {
    return listDeadLetters(this.db, limit);
  }

  async getDeadLetter(consumer: string, messageId: string): Promise<DeadLetter | undefined> {
    return getDeadLetter(this.db, consumer, messageId);
  }

  /**
   * Claims the dead letter in the database and republishes it, attempts reset to 1, straight to
   * the consumer's work queue; the claim commits only after RabbitMQ confirmed the publish.
   */
  async replayDeadLetter(consumer: string, messageId: string): Promise<boolean> {
    const session = this.#requireSession();
    return replayDeadLetter(this.db, this.clock, session, {
      prefix: this.#prefix, confirmTimeoutMs: this.opts.confirmTimeoutMs, consumesHere: (c) => this.#subs.some((s) => s.consumer === c),
    }, consumer, messageId);
  }

  /**
   * Counts from the database (outbox, dead_letters) and from RabbitMQ (ready messages in the work
   * and dead-letter queues of this process's consumers). Throws when RabbitMQ is not connected, so
   * readiness reports the broker down.
   */
  async stats(): Promise<BrokerStats> {
    return collectStats(
      this.db, this.clock.now(),
      () => this.#depths(this.#requireSession()),
      () => [...this.#workers.values()].reduce((n, w) => n + w.busy, 0),
    );
  }

  /** Declares the topology again on the live connection (it is idempotent; start() and every reconnect do it). */
  async declareTopology(): Promise<void> {
    await this.#requireSession().onThrowawayChannel((channel) => declareTopology(channel, this.#topology ?? this.topology()));
  }

  /** The live AMQP connections and channels, for tests that break them from outside. */
  connectionsForTests(): { publisher?: ChannelModel; consumer?: ChannelModel; channels: readonly Channel[] } {
    const session = this.#session;
    return session?.alive ? { publisher: session.publisher, consumer: session.consumer, channels: session.channels } : { channels: [] };
  }

  /** Whether a live session is up (connected, topology declared, consumers running). */
  get connected(): boolean {
    return this.#session?.alive ?? false;
  }

  // ---- connection ----

  #open(): Promise<void> {
    const opening = (async () => {
      let opened: Session | undefined;
      const session = await Session.open(
        this.opts.url, `flashsale ${this.#prefix}`, this.opts.confirmTimeoutMs,
        (channel) => declareTopology(channel, this.#topology!),
        (error) => this.#lost(opened, error),
      );
      opened = session;
      if (this.#stopping) {
        await session.close();
        return;
      }
      // Current before the consumers start: their first deliveries may come before this resolves.
      this.#session = session;
      try {
        for (const sub of this.#subs) {
          await session.consume(names.work(this.#prefix, sub.consumer), this.opts.prefetch, (channel, message) => this.#deliver(sub, session, channel, message));
          await session.consume(names.dlq(this.#prefix, sub.consumer), Math.min(this.opts.prefetch, 16), (channel, message) => {
            if (!this.#stopping) this.#recorders.get(sub.consumer)?.push({ session, channel, message });
          });
        }
        if (!session.alive) throw new Error('the connection was lost while it was being set up');
      } catch (error) {
        if (this.#session === session) this.#session = undefined;
        await session.close();
        throw error;
      }
      this.#reconnectDelay = this.opts.reconnectMinMs ?? 100;
      this.log.info({ prefix: this.#prefix, consumers: this.#subs.length }, 'RabbitMQ session up');
      this.nudge();
    })();
    this.#opening = opening;
    return opening.finally(() => {
      if (this.#opening === opening) this.#opening = undefined;
    });
  }

  #lost(session: Session | undefined, error: Error): void {
    if (!session || session !== this.#session) return;
    this.#session = undefined;
    if (this.#stopping) return;
    this.log.warn({ err: error }, 'RabbitMQ connection or channel lost; reconnecting');
    this.#scheduleReconnect();
  }

  #scheduleReconnect(): void {
    if (this.#stopping || this.#reconnectTimer) return;
    const delay = this.#reconnectDelay * (0.75 + Math.random() / 2);
    this.#reconnectDelay = Math.min(this.opts.reconnectMaxMs ?? 5000, this.#reconnectDelay * 2);
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = undefined;
      if (this.#stopping) return;
      this.#open().catch((error: unknown) => {
        const level = error instanceof TopologyMismatchError ? 'error' : 'warn';
        this.log[level]({ err: error }, 'RabbitMQ reconnect failed; trying again');
        this.#scheduleReconnect();
      });
    }, delay);
    this.#reconnectTimer.unref?.();
  }

  #requireSession(): Session {
    const session = this.#session;
    if (!session?.alive) throw new Error('RabbitMQ is not connected');
    return session;
  }

  // ---- outbox relay ----

  /** One round of the relay (see rabbitmq/relay.ts), while a live session is up. */
  async #relay(): Promise<boolean> {
    const session = this.#session;
    if (!session?.alive || this.#stopping) return false;
    return relayDueRows(this.db, this.clock, this.log, session, { exchange: names.events(this.#prefix), batchSize: this.#batch, confirmTimeoutMs: this.opts.confirmTimeoutMs });
  }

  // ---- consumers ----

  #deliver(sub: Subscription, session: Session, channel: Channel, message: ConsumeMessage): void {
    if (this.#stopping) return; // unacked: requeued when the channel closes
    const id = messageIdOf(message);
    // Only after a crash, a lost connection or a requeue: rare enough to log each, and the trail a drill counts.
    if (message.fields.redelivered) this.log.info({ consumer: sub.consumer, messageId: id }, 'redelivered message');
    if (id) this.#retries.delete(retryKey(sub.consumer, id, attemptOf(message)));
    this.#workers.get(sub.consumer)?.push({ session, channel, message });
  }

  async #handle(sub: Subscription, delivery: Delivery): Promise<void> {
    if (!delivery.session.owns(delivery.channel)) return; // its session died: RabbitMQ redelivers it
    let message: Message;
    try {
      message = decode(delivery.message);
    } catch (error) {
      await this.#sendOff(sub, delivery, attemptOf(delivery.message), error, true);
      return;
    }
    try {
      if (sub.transactional) await this.#runTransactional(sub.consumer, sub.handler, message);
      else await this.#runSelfManaged(sub.consumer, sub.handler, message);
    } catch (error) {
      const dead = message.attempt >= this.opts.maxAttempts;
      this.log.warn({ consumer: sub.consumer, messageId: message.id, topic: message.topic, attempt: message.attempt, dead, err: error }, 'handler failed');
      await this.#sendOff(sub, delivery, message.attempt, error, dead);
      return;
    }
    ack(delivery);
  }

  async #runTransactional(consumer: string, handler: Handler, message: Message): Promise<void> {
    await this.db.transaction(async (tx) => {
      const fresh = await tx.query(
        `insert into processed_messages (consumer, message_id, processed_at) values ($1, $2, $3)
         on conflict do nothing returning 1`,
        [consumer, message.id, this.clock.now().toISOString()],
      );
      if (fresh.length === 0) return; // effect already committed by an earlier delivery
      await handler(tx, message);
    });
  }

  async #runSelfManaged(consumer: string, handler: SelfManagedHandler, message: Message): Promise<void> {
    const seen = await this.db.query('select 1 from processed_messages where consumer = $1 and message_id = $2', [consumer, message.id]);
    if (seen.length === 0) await handler(message);
    await this.db.query(
      'insert into processed_messages (consumer, message_id, processed_at) values ($1, $2, $3) on conflict do nothing',
      [consumer, message.id, this.clock.now().toISOString()],
    );
  }

  /**
   * After a failed attempt: to the retry queue whose TTL is the backoff, or to the dead-letter
   * queue; the original is acked only once RabbitMQ confirmed the copy. Until then it stays
   * unacked in our hands: a confirm that timed out or a nack (a resource alarm) is tried again
   * after a pause — not requeued, which would count against x-delivery-limit. A copy no queue took
   * (a queue deleted from outside) abandons the session: the reconnect declares the topology again
   * and RabbitMQ redelivers the original. Possible duplicate copies are deduped by message id.
   */
  async #sendOff(sub: Subscription, delivery: Delivery, attempt: number, error: unknown, dead: boolean): Promise<void> {
    const { session } = delivery;
    const ttl = retryTtl(attempt, this.opts.backoffBaseMs);
    const queue = dead ? names.dlq(this.#prefix, sub.consumer) : names.retry(this.#prefix, sub.consumer, ttl);
    const id = messageIdOf(delivery.message);
    const key = id && !dead ? retryKey(sub.consumer, id, attempt + 1) : undefined;
    const properties = delivery.message.properties;
    for (let pause = 100; ; pause = Math.min(pause * 2, 5000)) {
      if (!session.owns(delivery.channel) || this.#stopping) return; // RabbitMQ redelivers it
      if (key) this.#retries.set(key, performance.now() + ttl);
      const { outcome } = publishConfirmed(
        session.confirm, names.direct(this.#prefix), queue, delivery.message.content,
        {
          messageId: id, type: topicOf(delivery.message), contentType: properties.contentType as string | undefined,
          timestamp: properties.timestamp as number | undefined, appId: 'flashsale', mandatory: true,
          headers: { [ATTEMPT_HEADER]: dead ? attempt : attempt + 1, [LAST_ERROR_HEADER]: String(error).slice(0, 2000) },
        },
        this.opts.confirmTimeoutMs,
      );
      const result = await outcome;
      if (result.ok) {
        ack(delivery);
        return;
      }
      if (key) this.#retries.delete(key);
      if (result.reason === 'unroutable') {
        this.log.warn({ consumer: sub.consumer, messageId: id, queue, err: result.error }, 'no queue took a failed message; declaring the topology again');
        session.fail(result.error);
        return;
      }
      this.log.warn({ consumer: sub.consumer, messageId: id, queue, err: result.error }, 'could not park a failed message yet; holding it and trying again');
      await this.#pause(pause);
    }
  }

  /** Copies a dead letter from the consumer's dead-letter queue into `dead_letters`, then acks. */
  async #record(sub: Subscription, delivery: Delivery): Promise<void> {
    const record = deadRecordOf(sub.consumer, delivery.message, this.clock.now());
    for (let wait = 200; ; wait = Math.min(wait * 2, 10_000)) {
      if (!delivery.session.owns(delivery.channel) || this.#stopping) return;
      try {
        const recorded = await recordDeadLetter(this.db, record);
        if (recorded) this.log.error({ consumer: sub.consumer, messageId: record.messageId, topic: record.topic, attempts: record.attempts, lastError: record.lastError }, 'message dead-lettered');
        ack(delivery);
        return;
      } catch (error) {
        // Never nack: a dead-letter queue has no dead-letter queue. Hold it and try again.
        this.log.error({ err: error, consumer: sub.consumer, messageId: record.messageId }, 'could not record a dead letter; retrying');
        await this.#pause(wait);
      }
    }
  }

  /** A bug, not a handler failure: the delivery would stay unacked, holding a prefetch slot. Start over. */
  #unexpected(sub: Subscription, delivery: Delivery, error: unknown): void {
    this.log.error({ err: error, consumer: sub.consumer, messageId: messageIdOf(delivery.message) }, 'unexpected error while handling a delivery; reconnecting');
    delivery.session.fail(error instanceof Error ? error : new Error(String(error)));
  }

  // ---- drain and stats ----

  async #quiet(): Promise<boolean> {
    const session = this.#session;
    if (!session?.alive || this.#relayLoop.busy || this.#opening) return false;
    for (const worker of [...this.#workers.values(), ...this.#recorders.values()]) if (worker.busy > 0) return false;
    const now = performance.now();
    for (const [key, due] of this.#retries) {
      if (now > due + STALE_RETRY_MS) {
        this.log.warn({ retry: key }, 'a parked retry never came back; drain stops waiting for it');
        this.#retries.delete(key);
      } else if (now >= due) {
        return false;
      }
    }
    if ((await dueOutboxRows(this.db, this.clock.now())) > 0) return false;
    try {
      const depths = await this.#depths(session);
      return depths.work === 0 && depths.dead === 0;
    } catch {
      return false;
    }
  }

  #depths(session: Session): Promise<QueueDepths> {
    return queueDepths(session, this.#prefix, this.#subs, this.opts.confirmTimeoutMs);
  }

  /** Sleeps `ms`, or less if stop() is called. */
  #pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#wake = this.#wake.filter((w) => w !== done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      timer.unref?.();
      this.#wake.push(done);
    });
  }
}

function ack(delivery: Delivery): void {
  if (!delivery.session.owns(delivery.channel)) return; // redelivered after the reconnect; deduped then
  try {
    delivery.channel.ack(delivery.message);
  } catch {
    // the channel closed under us: same as above
  }
}

function retryKey(consumer: string, messageId: string, attempt: number): string {
  return `${consumer}\u0000${messageId}\u0000${attempt}`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function redact(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return 'AMQP_URL';
  }
}
