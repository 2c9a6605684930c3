import type { Channel, ConsumeMessage } from 'amqplib';
import type { Clock } from '../../clock.ts';
import type { Database } from '../../database/database.ts';
import type { Logger } from '../../logger.ts';
import { failedAttempt, type HandledOutcome, type Message } from '../broker.ts';
import { attemptOf, decode, messageIdOf } from './codec.ts';
import { runDeduped } from './dedupe.ts';
import { ack, type Delivery } from './delivery.ts';
import { recordDelivery } from './recorder.ts';
import { ParkedRetries, retryKey, sendOff, type SendOffDeps } from './retry.ts';
import type { Session } from './session.ts';
import type { StopSignal } from './stop-signal.ts';
import type { Subscription, Subscriptions } from './subscriptions.ts';
import { names, TRACEPARENT_HEADER } from './topology.ts';
import { carrierOf, consumeSpan } from '../trace.ts';
import { Worker } from './worker.ts';

/**
 * The consumers of this process: one durable quorum queue per consumer group, bound to the topic
 * exchange by its patterns; manual ack only after the effect committed (the message id is recorded
 * in processed_messages in the handler's transaction, or after a self-managed handler resolved).
 * A failed attempt goes to a retry queue or the dead-letter queue (retry.ts); each dead-letter
 * queue is consumed by a recorder (recorder.ts).
 */

export interface ConsumerOptions {
  prefix: string;
  prefetch: number;
  /** Handlers of one consumer group running at once in this process. */
  concurrency: number;
  maxAttempts: number;
  backoffBaseMs: number;
  confirmTimeoutMs: number;
  /** Told after each handler run (metrics). */
  onHandled?: (consumer: string, outcome: HandledOutcome) => void;
}

export class Consumers {
  #workers = new Map<string, Worker<Delivery>>();
  #recorders = new Map<string, Worker<Delivery>>();
  readonly retries = new ParkedRetries();
  readonly #sendOffDeps: SendOffDeps;

  private readonly subs: Subscriptions;
  private readonly db: Database;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly signal: StopSignal;
  private readonly opts: ConsumerOptions;

  constructor(
    subs: Subscriptions,
    db: Database,
    clock: Clock,
    log: Logger,
    signal: StopSignal,
    opts: ConsumerOptions,
  ) {
    this.subs = subs;
    this.db = db;
    this.clock = clock;
    this.log = log;
    this.signal = signal;
    this.opts = opts;
    this.#sendOffDeps = { prefix: opts.prefix, maxAttempts: opts.maxAttempts, backoffBaseMs: opts.backoffBaseMs, confirmTimeoutMs: opts.confirmTimeoutMs, log, signal, retries: this.retries };
  }

  /** start(): a worker for each group's deliveries and one for its dead letters. */
  prepare(): void {
    for (const sub of this.subs.consumed) {
      // A self-managed group that groups its work takes up to its own concurrency (at most the prefetch: no more are unacked at once).
      const concurrency = Math.max(this.opts.concurrency, sub.transactional ? 1 : Math.min(sub.concurrency ?? 1, this.opts.prefetch));
      this.#workers.set(sub.consumer, new Worker(concurrency, (d) => this.#handle(sub, d).catch((e: unknown) => this.#unexpected(sub, d, e))));
      this.#recorders.set(sub.consumer, new Worker(1, (d) => this.#record(sub, d).catch((e: unknown) => this.#unexpected(sub, d, e))));
    }
  }

  /** Consumes every group's work queue and dead-letter queue on the session. */
  async attach(session: Session): Promise<void> {
    const { prefix, prefetch } = this.opts;
    for (const sub of this.subs.consumed) {
      await session.consume(names.work(prefix, sub.consumer), prefetch, (channel, message) => this.#deliver(sub, session, channel, message));
      await session.consume(names.dlq(prefix, sub.consumer), Math.min(prefetch, 16), (channel, message) => {
        if (!this.signal.stopping) this.#recorders.get(sub.consumer)?.push({ session, channel, message });
      });
    }
  }

  /** Deliveries received and not yet handled (waiting or in a handler); dead letters not counted. */
  get inFlight(): number {
    return [...this.#workers.values()].reduce((n, w) => n + w.busy, 0);
  }

  /** A delivery or a dead letter is waiting or being handled. */
  get busy(): boolean {
    return this.#all().some((worker) => worker.busy > 0);
  }

  /** stop(): forgets waiting deliveries (unacked: RabbitMQ requeues them) and waits for running handlers. */
  async settle(): Promise<void> {
    for (const worker of this.#all()) worker.clearWaiting();
    await Promise.all(this.#all().map((w) => w.idle()));
  }

  /** stop(), once the session is closed: the next start() begins afresh. */
  reset(): void {
    this.#workers.clear();
    this.#recorders.clear();
    this.retries.clear();
  }

  #all(): Array<Worker<Delivery>> {
    return [...this.#workers.values(), ...this.#recorders.values()];
  }

  #deliver(sub: Subscription, session: Session, channel: Channel, message: ConsumeMessage): void {
    if (this.signal.stopping) return; // unacked: requeued when the channel closes
    const id = messageIdOf(message);
    // Only after a crash, a lost connection or a requeue: rare enough to log each, and the trail a drill counts.
    if (message.fields.redelivered) this.log.info({ consumer: sub.consumer, messageId: id }, 'redelivered message');
    if (id) this.retries.forget(retryKey(sub.consumer, id, attemptOf(message)));
    this.#workers.get(sub.consumer)?.push({ session, channel, message });
  }

  async #handle(sub: Subscription, delivery: Delivery): Promise<void> {
    if (!delivery.session.owns(delivery.channel)) return; // its session died: RabbitMQ redelivers it
    let message: Message;
    try {
      message = decode(delivery.message);
    } catch (error) {
      await sendOff(this.#sendOffDeps, sub.consumer, delivery, attemptOf(delivery.message), error, true);
      return;
    }
    try {
      const parent = carrierOf(delivery.message.properties.headers?.[TRACEPARENT_HEADER]);
      await consumeSpan(sub.consumer, message, parent, () => runDeduped(this.db, this.clock, sub, message), 'rabbitmq');
    } catch (error) {
      const { dead, counted } = failedAttempt(error, message.attempt, this.opts.maxAttempts);
      this.log.warn({ consumer: sub.consumer, messageId: message.id, topic: message.topic, attempt: message.attempt, dead, err: error }, 'handler failed');
      this.opts.onHandled?.(sub.consumer, dead ? 'dead' : 'retry');
      await sendOff(this.#sendOffDeps, sub.consumer, delivery, message.attempt, error, dead, !counted);
      return;
    }
    this.opts.onHandled?.(sub.consumer, 'ok');
    ack(delivery);
  }

  #record(sub: Subscription, delivery: Delivery): Promise<void> {
    return recordDelivery({ db: this.db, clock: this.clock, log: this.log, signal: this.signal }, sub.consumer, delivery);
  }

  /** A bug, not a handler failure: the delivery would stay unacked, holding a prefetch slot. Start over. */
  #unexpected(sub: Subscription, delivery: Delivery, error: unknown): void {
    this.log.error({ err: error, consumer: sub.consumer, messageId: messageIdOf(delivery.message) }, 'unexpected error while handling a delivery; reconnecting');
    delivery.session.fail(error instanceof Error ? error : new Error(String(error)));
  }
}
