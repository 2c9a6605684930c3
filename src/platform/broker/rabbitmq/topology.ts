import type { Channel } from 'amqplib';
import { backoffMs } from '../broker.ts';

/**
 * The RabbitMQ topology, as data: every exchange and queue with its exact arguments, so that a
 * declaration is the same every time (RabbitMQ refuses to re-declare a queue with other arguments,
 * and closes the channel when asked to).
 *
 *   <prefix>.events   topic exchange: the outbox relay publishes every event here, routing key = topic
 *   <prefix>.direct   direct exchange: addresses one queue by its name (retries, dead letters, replays)
 *   <prefix>.q.<consumer>                 the consumer group's work queue (quorum)
 *   <prefix>.q.<consumer>.retry.<ttl>ms   one per distinct backoff: fixed TTL, dead-letters back to the work queue
 *   <prefix>.q.<consumer>.dlq             the consumer group's dead letters (quorum)
 */

export interface ConsumerTopology {
  consumer: string;
  /** Our topic patterns (`order.created`, `order.*`, `*`). */
  topics: readonly string[];
}

export interface TopologyOptions {
  prefix: string;
  maxAttempts: number;
  backoffBaseMs: number;
  /** x-delivery-limit of each work queue: redeliveries without an ack (crash loops) before RabbitMQ dead-letters. */
  deliveryLimit: number;
}

export interface QueueSpec {
  name: string;
  arguments: Record<string, string | number>;
  /** Routing keys on the events exchange (topic patterns in RabbitMQ syntax). */
  eventBindings: string[];
}

export interface Topology {
  eventsExchange: string;
  directExchange: string;
  queues: QueueSpec[];
}

/** Header carrying our attempt number (1 on first delivery); RabbitMQ's x-delivery-count only counts redeliveries. */
export const ATTEMPT_HEADER = 'x-attempt';
/** Header carrying the last handler error, for the dead-letter record. */
export const LAST_ERROR_HEADER = 'x-last-error';
/** Header carrying the W3C trace context of the publish (tracing on only); kept on retries. */
export const TRACEPARENT_HEADER = 'traceparent';

export const names = {
  events: (prefix: string) => `${prefix}.events`,
  direct: (prefix: string) => `${prefix}.direct`,
  work: (prefix: string, consumer: string) => `${prefix}.q.${consumer}`,
  retry: (prefix: string, consumer: string, ttlMs: number) => `${prefix}.q.${consumer}.retry.${ttlMs}ms`,
  dlq: (prefix: string, consumer: string) => `${prefix}.q.${consumer}.dlq`,
};

/** The TTL of the retry after failed attempt `attempt` (1-based): the broker's exponential backoff. */
export function retryTtl(attempt: number, backoffBaseMs: number): number {
  return Math.max(1, Math.round(backoffMs(attempt, backoffBaseMs)));
}

/** Distinct retry delays for attempts 1 … maxAttempts-1 (the backoff is capped, so few queues). */
export function retryTtls(maxAttempts: number, backoffBaseMs: number): number[] {
  const ttls = new Set<number>();
  for (let attempt = 1; attempt < maxAttempts; attempt++) ttls.add(retryTtl(attempt, backoffBaseMs));
  return [...ttls].sort((a, b) => a - b);
}

/**
 * Our patterns in RabbitMQ topic syntax. Ours: `a.b` is exact, `a.*` is any topic starting `a.`
 * (any depth), `*` is everything. RabbitMQ's `*` is exactly one word and `#` zero or more, so
 * `a.*` becomes `a.*.#` (one or more words after `a`) and `*` becomes `#`.
 */
export function bindingKey(pattern: string): string {
  validatePattern(pattern);
  if (pattern === '*') return '#';
  if (pattern.endsWith('.*')) return `${pattern}.#`;
  return pattern;
}

export function validatePattern(pattern: string): void {
  const words = pattern.split('.');
  const ok = pattern === '*' || (words.every((w, i) => w.length > 0 && !w.includes('#') && (w !== '*' || i === words.length - 1) && (w === '*' || !w.includes('*'))));
  if (!ok) throw new Error(`topic pattern ${JSON.stringify(pattern)} is not supported: use an exact topic, "prefix.*" or "*"`);
}

/**
 * Queue names must fit an AMQP short string; no dots, so that no consumer's work queue can be named
 * like another consumer's retry or dead-letter queue.
 */
export function validateConsumerName(consumer: string): void {
  if (!/^[A-Za-z0-9_:-]{1,120}$/.test(consumer)) throw new Error(`consumer name ${JSON.stringify(consumer)} must be 1-120 characters of [A-Za-z0-9_:-]`);
}

export function buildTopology(opts: TopologyOptions, consumers: readonly ConsumerTopology[]): Topology {
  const { prefix } = opts;
  const direct = names.direct(prefix);
  // At-least-once dead lettering (RabbitMQ ≥ 3.10, quorum source queues only) needs
  // overflow=reject-publish; with drop-head RabbitMQ silently falls back to at-most-once.
  const safeDeadLettering = { 'x-dead-letter-strategy': 'at-least-once', 'x-overflow': 'reject-publish' };
  const queues: QueueSpec[] = [];
  for (const { consumer, topics } of consumers) {
    const work = names.work(prefix, consumer);
    const dlq = names.dlq(prefix, consumer);
    queues.push({
      name: work,
      arguments: {
        'x-queue-type': 'quorum',
        'x-delivery-limit': opts.deliveryLimit,
        'x-dead-letter-exchange': direct,
        'x-dead-letter-routing-key': dlq,
        ...safeDeadLettering,
      },
      eventBindings: [...new Set(topics.map(bindingKey))],
    });
    for (const ttl of retryTtls(opts.maxAttempts, opts.backoffBaseMs)) {
      queues.push({
        name: names.retry(prefix, consumer, ttl),
        arguments: {
          'x-queue-type': 'quorum',
          // One TTL per queue: a quorum queue expires messages at its head only, so mixed TTLs would
          // make a short retry wait behind a long one.
          'x-message-ttl': ttl,
          'x-dead-letter-exchange': direct,
          'x-dead-letter-routing-key': work,
          ...safeDeadLettering,
        },
        eventBindings: [],
      });
    }
    queues.push({ name: dlq, arguments: { 'x-queue-type': 'quorum' }, eventBindings: [] });
  }
  return { eventsExchange: names.events(prefix), directExchange: direct, queues };
}

/**
 * Deletes every queue and exchange of the topologies, messages included (delete is idempotent).
 * For throwaway prefixes — a test's, a benchmark run's — never for a live one.
 */
export async function deleteTopologies(channel: Channel, topologies: readonly Topology[]): Promise<void> {
  const exchanges = new Set<string>();
  for (const topology of topologies) {
    for (const queue of topology.queues) await channel.deleteQueue(queue.name);
    exchanges.add(topology.eventsExchange).add(topology.directExchange);
  }
  for (const exchange of exchanges) await channel.deleteExchange(exchange);
}

export class TopologyMismatchError extends Error {
  override name = 'TopologyMismatchError';
}

/**
 * Declares everything, idempotently: same names, same arguments, every time. Runs on a channel of
 * its own, because a mismatch (406 PRECONDITION_FAILED) closes the channel it happened on.
 */
export async function declareTopology(channel: Channel, topology: Topology): Promise<void> {
  let current = '';
  try {
    current = `exchange ${topology.eventsExchange}`;
    await channel.assertExchange(topology.eventsExchange, 'topic', { durable: true, autoDelete: false });
    current = `exchange ${topology.directExchange}`;
    await channel.assertExchange(topology.directExchange, 'direct', { durable: true, autoDelete: false });
    for (const queue of topology.queues) {
      current = `queue ${queue.name}`;
      await channel.assertQueue(queue.name, { durable: true, exclusive: false, autoDelete: false, arguments: queue.arguments });
      await channel.bindQueue(queue.name, topology.directExchange, queue.name);
      for (const key of queue.eventBindings) await channel.bindQueue(queue.name, topology.eventsExchange, key);
    }
  } catch (error) {
    if ((error as { code?: number }).code === 406) {
      throw new TopologyMismatchError(
        `RabbitMQ already has ${current} with other arguments (${String(error)}). Queue arguments cannot change: ` +
          'drain it and delete it (rabbitmqctl delete_queue <name>), or run with another AMQP prefix.',
      );
    }
    throw error;
  }
}
