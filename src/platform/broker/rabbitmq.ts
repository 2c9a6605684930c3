import type { Channel, ChannelModel } from 'amqplib';
import type { Clock } from '../clock.ts';
import type { Database } from '../database/database.ts';
import type { Logger } from '../logger.ts';
import type { Broker, BrokerStats, DeadLetter, HandledOutcome, Handler, QueueStat, SelfManagedHandler, SelfManagedOptions } from './broker.ts';
import { PassLoop } from './pass-loop.ts';
import { connectFailure, Connection } from './rabbitmq/connection.ts';
import { Consumers } from './rabbitmq/consumers.ts';
import { getDeadLetter, listDeadLetters } from './rabbitmq/dead-letters.ts';
import { relayDueRows } from './rabbitmq/relay.ts';
import { replayDeadLetter } from './rabbitmq/replay.ts';
import type { Session } from './rabbitmq/session.ts';
import { collectStats, dueOutboxRows, queueDepths, type QueueDepths } from './rabbitmq/stats.ts';
import { StopSignal } from './rabbitmq/stop-signal.ts';
import { Subscriptions, type Subscription } from './rabbitmq/subscriptions.ts';
import { buildTopology, declareTopology, names, type Topology } from './rabbitmq/topology.ts';

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
  /** Told after each handler run (metrics). */
  onHandled?: (consumer: string, outcome: HandledOutcome) => void;
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

/**
 * The distributed broker: RabbitMQ with quorum queues, over the same transactional outbox. This
 * class wires the parts in rabbitmq/ together:
 *
 * - Relay (relay.ts): due outbox rows are published to the topic exchange with publisher
 *   confirms, and marked published only after their confirm; consumers dedupe what goes twice.
 * - Delays (payment deadlines): a delayed outbox row simply waits in the outbox until it is due.
 *   Chosen over fixed-TTL delay queues because the deadline is per sale (payment_window_s varies),
 *   and a TTL queue holds one delay only (a quorum queue expires at its head, so mixed TTLs block
 *   each other) — that would be one queue per distinct window, created at run time. The outbox row
 *   is already durable and replicated with the database, committed atomically with the order, is
 *   visible to the audit, and follows the injected Clock, so tests move deadlines without waiting.
 *   Cost: the relay polls (BROKER_POLL_MS) an indexed `deliver_after` range.
 * - Consumers (consumers.ts, dedupe.ts): one durable quorum queue per consumer group (topology.ts),
 *   acked only after the effect committed.
 * - Retries (retry.ts): through fixed-TTL retry queues, then the consumer's dead-letter queue.
 * - Dead letters (recorder.ts, dead-letters.ts, replay.ts): copied from each dead-letter queue into
 *   the `dead_letters` table, which admins list, inspect and replay from.
 * - Connections (connection.ts, session.ts): any lost connection or channel → a new session with
 *   backoff, the topology declared again.
 * - Stats and drain (stats.ts): counts from the database and from the queues.
 */
export class RabbitMqBroker implements Broker {
  readonly kind = 'rabbitmq' as const;
  readonly #prefix: string;
  readonly #batch: number;
  readonly #deliveryLimit: number;
  readonly #subs = new Subscriptions();
  readonly #signal = new StopSignal();
  readonly #relayLoop: PassLoop;
  readonly #consumers: Consumers;
  readonly #connection: Connection;
  /** Fixed at start(): the reconnects declare the same topology. */
  #topology: Topology | undefined;
  #started = false;

  private readonly db: Database;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly opts: RabbitMqBrokerOptions;

  constructor(
    db: Database,
    clock: Clock,
    log: Logger,
    opts: RabbitMqBrokerOptions,
  ) {
    this.db = db;
    this.clock = clock;
    this.log = log;
    this.opts = opts;
    this.#prefix = opts.prefix ?? 'flashsale';
    if (!/^[A-Za-z0-9_:-]{1,60}$/.test(this.#prefix)) throw new Error(`AMQP prefix ${JSON.stringify(this.#prefix)} must be 1-60 characters of [A-Za-z0-9_:-]`);
    this.#batch = opts.batchSize ?? 200;
    this.#deliveryLimit = opts.deliveryLimit ?? 20;
    this.#relayLoop = new PassLoop(() => this.#relay(), opts.pollMs, (error) => this.log.error({ err: error }, 'outbox relay round failed'));
    this.#consumers = new Consumers(this.#subs, db, clock, log, this.#signal, {
      prefix: this.#prefix, prefetch: opts.prefetch, concurrency: opts.concurrency ?? 1,
      maxAttempts: opts.maxAttempts, backoffBaseMs: opts.backoffBaseMs, confirmTimeoutMs: opts.confirmTimeoutMs, onHandled: opts.onHandled,
    });
    this.#connection = new Connection(
      { url: opts.url, name: `flashsale ${this.#prefix}`, rpcTimeoutMs: opts.confirmTimeoutMs, reconnectMinMs: opts.reconnectMinMs, reconnectMaxMs: opts.reconnectMaxMs },
      log, this.#signal,
      {
        declare: (channel) => declareTopology(channel, this.#topology!),
        consume: (session) => this.#consumers.attach(session),
        up: () => {
          this.log.info({ prefix: this.#prefix, consumers: this.#subs.consumed.length }, 'RabbitMQ session up');
          this.nudge();
        },
      },
    );
  }

  consume(consumer: string, topics: readonly string[], handler: Handler): void {
    this.#subscribe({ consumer, topics, transactional: true, handler });
  }

  consumeSelfManaged(consumer: string, topics: readonly string[], handler: SelfManagedHandler, options: SelfManagedOptions = {}): void {
    this.#subscribe({ consumer, topics, transactional: false, handler, ...(options.concurrency ? { concurrency: options.concurrency } : {}) });
  }

  declareConsumerGroup(consumer: string, topics: readonly string[]): void {
    if (this.#started) throw new Error('declare consumer groups before start()');
    this.#subs.declare(consumer, topics);
  }

  #subscribe(sub: Subscription): void {
    if (this.#started) throw new Error(`consumer ${sub.consumer}: subscribe before start()`);
    this.#subs.add(sub);
  }

  /** Every exchange and queue this broker declares, with its arguments (for operators and test cleanup). */
  topology(): Topology {
    return buildTopology(
      { prefix: this.#prefix, maxAttempts: this.opts.maxAttempts, backoffBaseMs: this.opts.backoffBaseMs, deliveryLimit: this.#deliveryLimit },
      this.#subs.all(),
    );
  }

  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    this.#signal.clear();
    this.#topology = this.topology();
    this.#consumers.prepare();
    try {
      await this.#connection.open();
    } catch (error) {
      this.#started = false;
      this.#connection.resetReconnect();
      throw connectFailure(this.opts.url, error);
    }
    this.#relayLoop.start();
  }

  async stop(): Promise<void> {
    if (!this.#started) return;
    this.#signal.raise();
    const relayStopped = this.#relayLoop.stop();
    this.#connection.cancelReconnect();
    this.#signal.wakeAll();
    await this.#connection.opening?.catch(() => {});
    await relayStopped;
    const session = this.#connection.session;
    // Cancel first, so no new deliveries arrive; deliveries waiting in a worker stay unacked and
    // go back to their queue when the channel closes.
    await session?.cancelConsumers(this.opts.confirmTimeoutMs);
    await this.#consumers.settle();
    this.#connection.forget();
    await session?.close();
    this.#consumers.reset();
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

  /** Republishes a dead letter to its work queue, attempts reset to 1 (see rabbitmq/replay.ts). */
  async replayDeadLetter(consumer: string, messageId: string): Promise<boolean> {
    const session = this.#connection.require();
    return replayDeadLetter(this.db, this.clock, session, {
      prefix: this.#prefix, confirmTimeoutMs: this.opts.confirmTimeoutMs, consumesHere: (c) => this.#subs.consumes(c),
    }, consumer, messageId);
  }

  /**
   * Counts from the database (outbox, dead_letters) and from RabbitMQ (ready messages in the work
   * and dead-letter queues of this process's consumers). Throws when RabbitMQ is not connected, so
   * readiness reports the broker down.
   */
  async stats(): Promise<BrokerStats> {
    return collectStats(this.db, this.clock.now(), () => this.#depths(this.#connection.require()), () => this.#consumers.inFlight);
  }

  async queueDepths(): Promise<QueueStat[]> {
    return (await queueDepths(this.#connection.require(), this.#prefix, this.#subs.all(), this.opts.confirmTimeoutMs)).queues;
  }

  /** Declares the topology again on the live connection (it is idempotent; start() and every reconnect do it). */
  async declareTopology(): Promise<void> {
    await this.#connection.require().onThrowawayChannel((channel) => declareTopology(channel, this.#topology ?? this.topology()));
  }

  /** The live AMQP connections and channels, for tests that break them from outside. */
  connectionsForTests(): { publisher?: ChannelModel; consumer?: ChannelModel; channels: readonly Channel[] } {
    const session = this.#connection.session;
    return session?.alive ? { publisher: session.publisher, consumer: session.consumer, channels: session.channels } : { channels: [] };
  }

  /** Whether a live session is up (connected, topology declared, consumers running). */
  get connected(): boolean {
    return this.#connection.session?.alive ?? false;
  }

  // ---- outbox relay ----

  /** One round of the relay (see rabbitmq/relay.ts), while a live session is up. */
  async #relay(): Promise<boolean> {
    const session = this.#connection.session;
    if (!session?.alive || this.#signal.stopping) return false;
    return relayDueRows(this.db, this.clock, this.log, session, { exchange: names.events(this.#prefix), batchSize: this.#batch, confirmTimeoutMs: this.opts.confirmTimeoutMs });
  }

  // ---- drain ----

  /** One look at everything drain() waits for; false at the first thing still due. */
  async #quiet(): Promise<boolean> {
    const session = this.#connection.session;
    if (!session?.alive || this.#relayLoop.busy || this.#connection.opening) return false;
    if (this.#consumers.busy || this.#consumers.retries.anyOverdue(this.log)) return false;
    if ((await dueOutboxRows(this.db, this.clock.now())) > 0) return false;
    try {
      const depths = await this.#depths(session);
      return depths.work === 0 && depths.dead === 0;
    } catch {
      return false;
    }
  }

  #depths(session: Session): Promise<QueueDepths> {
    return queueDepths(session, this.#prefix, this.#subs.consumed, this.opts.confirmTimeoutMs);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
