import type { Tx } from '../database/database.ts';
import { isBackendUnavailable } from '../unavailable.ts';

/** A message as a consumer sees it. `id` is stable across redeliveries: consumers dedupe on it. */
export interface Message<T = unknown> {
  id: string;
  topic: string;
  payload: T;
  /** 1 on first delivery. */
  attempt: number;
}

/**
 * Runs inside the transaction that records the message as processed, so the effect and the
 * dedupe mark commit together. Throwing rolls both back and schedules a retry.
 */
export type Handler<T = unknown> = (tx: Tx, message: Message<T>) => Promise<void>;

/**
 * For effects outside the database (a payment provider call, an email) or that need their own
 * transactions: runs with no transaction open, and the message is marked processed only after it
 * resolved. At-least-once: after a crash it may run again, so it must be idempotent by itself
 * (guarded updates, provider idempotency keys).
 */
export type SelfManagedHandler<T = unknown> = (message: Message<T>) => Promise<void>;

export interface SelfManagedOptions {
  /**
   * Messages the handler may be given at once (default 1). A handler that groups its work — one
   * transaction for whatever arrives together — asks for more; the in-process broker then hands
   * it a whole batch at once, RabbitMQ as many as its prefetch lets it hold unacknowledged.
   */
  concurrency?: number;
}

export interface BrokerStats {
  outboxPending: number;
  /** Age of the oldest due, unrelayed outbox row; 0 when none. */
  outboxLagSeconds: number;
  deliveriesPending: number;
  deadLetters: number;
  /**
   * Per consumer: messages ready for its handlers (`work`, its lag) and dead-lettered messages not
   * yet recorded (`dead`). RabbitMQ: only the consumers this process runs (another process's queues
   * are its own to report); in-process: every consumer.
   */
  queues: QueueStat[];
}

export interface QueueStat { consumer: string; work: number; dead: number }

/** A handler run's outcome, told to the broker's `onHandled` (metrics). */
export type HandledOutcome = 'ok' | 'retry' | 'dead';

export interface DeadLetter {
  consumer: string;
  messageId: string;
  topic: string;
  payload: unknown;
  attempts: number;
  lastError: string | null;
  deadAt: Date;
}

/** A dead letter as both brokers' tables store it (the in-process one selects `updated_at as dead_at`). */
export interface DeadLetterRow {
  consumer: string;
  message_id: string;
  topic: string;
  payload: unknown;
  attempts: number;
  last_error: string | null;
  dead_at: Date;
}

export function deadLetterOf(row: DeadLetterRow): DeadLetter {
  return { consumer: row.consumer, messageId: row.message_id, topic: row.topic, payload: row.payload, attempts: row.attempts, lastError: row.last_error, deadAt: row.dead_at };
}

/**
 * The broker port. Publishing never goes through it directly: business code writes events to the
 * outbox inside its own transaction (see outbox.ts); the broker relays them to consumers.
 */
export interface Broker {
  readonly kind: 'in-process' | 'rabbitmq';
  /** Subscribe a consumer group to topics (`order.created`, `order.*`, `*`). Before start(). */
  consume(consumer: string, topics: readonly string[], handler: Handler): void;
  /** Subscribe a consumer group whose handler manages its own transactions (see SelfManagedHandler). */
  consumeSelfManaged(consumer: string, topics: readonly string[], handler: SelfManagedHandler, options?: SelfManagedOptions): void;
  /**
   * Declares a consumer group that other processes consume, so that events for it are kept from
   * the first publish even before any of them runs. Before start().
   */
  declareConsumerGroup(consumer: string, topics: readonly string[]): void;
  start(): Promise<void>;
  /** Stops taking work and waits for in-flight handlers. */
  stop(): Promise<void>;
  /** Hint that the outbox has new rows, so delivery need not wait for the next poll. */
  nudge(): void;
  /** Resolves once nothing is due: every due outbox row relayed and every due delivery handled. */
  drain(): Promise<void>;
  listDeadLetters(limit: number): Promise<DeadLetter[]>;
  getDeadLetter(consumer: string, messageId: string): Promise<DeadLetter | undefined>;
  /** Puts a dead letter back in its queue for one more round of attempts. */
  replayDeadLetter(consumer: string, messageId: string): Promise<boolean>;
  /** Counts of what is due now (not of messages delayed into the future), for metrics and the audit. */
  stats(): Promise<BrokerStats>;
  /**
   * Every consumer group's queue depths, whichever process consumes it (stats() counts only this
   * process's): what an operator watches. RabbitMQ asks the broker, one passive declare per queue.
   */
  queueDepths(): Promise<QueueStat[]>;
}

/** What a component needs to register its consumers. */
export type Subscriber = Pick<Broker, 'consume' | 'consumeSelfManaged'>;

/** A subscriber that only declares the groups (their queues exist), consuming nothing here. */
export function declaringOnly(broker: Broker): Subscriber {
  return {
    consume: (consumer, topics) => broker.declareConsumerGroup(consumer, topics),
    consumeSelfManaged: (consumer, topics) => broker.declareConsumerGroup(consumer, topics),
  };
}

/** `a.b` matches `a.b`, `a.*` and `*`. */
export function topicMatches(pattern: string, topic: string): boolean {
  if (pattern === '*' || pattern === topic) return true;
  return pattern.endsWith('.*') && topic.startsWith(pattern.slice(0, -1));
}

/**
 * What a failed attempt leads to: dead-lettered once maxAttempts are used, retried before. An attempt
 * that failed because the database could not be reached is retried and not counted — an outage is
 * no fault of the message and must fill no dead-letter queue — unless maxAttempts allows no retry.
 */
export function failedAttempt(error: unknown, attempt: number, maxAttempts: number): { dead: boolean; counted: boolean } {
  const counted = !(isBackendUnavailable(error) && maxAttempts > 1);
  return { dead: counted && attempt >= maxAttempts, counted };
}

/** Exponential backoff, capped: base, 2·base, 4·base … */
export function backoffMs(attempt: number, baseMs: number, capMs = 60_000): number {
  return Math.min(capMs, baseMs * 2 ** Math.max(0, attempt - 1));
}
