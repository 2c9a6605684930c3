import type { Logger } from '../../logger.ts';
import { messageIdOf, topicOf } from './codec.ts';
import { ack, type Delivery } from './delivery.ts';
import { publishConfirmed, type PublishOutcome } from './publish.ts';
import type { StopSignal } from './stop-signal.ts';
import { ATTEMPT_HEADER, LAST_ERROR_HEADER, names, retryTtl, TRACEPARENT_HEADER } from './topology.ts';

/**
 * Retries: a failed attempt is republished (with confirm) to the consumer's retry queue whose fixed
 * TTL is the backoff, which dead-letters it back to the work queue; the attempt number travels in a
 * header. After maxAttempts it goes to the consumer's dead-letter queue instead.
 * x-delivery-limit on the work queue is the safety net for crash loops (no ack, no nack).
 */

/** A retry we parked in a TTL queue: drain() waits for it once its TTL has passed. */
const STALE_RETRY_MS = 60_000;

/**
 * The retries this process parked and has not seen come back, with the time each is due back in
 * its work queue: drain() is not quiet while one is overdue.
 */
export class ParkedRetries {
  #due = new Map<string, number>();

  /** Parked: back in `ttlMs`. */
  expect(key: string, ttlMs: number): void {
    this.#due.set(key, performance.now() + ttlMs);
  }

  /** Came back, or was not parked after all. */
  forget(key: string): void {
    this.#due.delete(key);
  }

  /** Whether a retry whose TTL has passed is still on its way back; one a minute late is given up on. */
  anyOverdue(log: Logger): boolean {
    const now = performance.now();
    for (const [key, due] of this.#due) {
      if (now > due + STALE_RETRY_MS) {
        log.warn({ retry: key }, 'a parked retry never came back; drain stops waiting for it');
        this.#due.delete(key);
      } else if (now >= due) {
        return true;
      }
    }
    return false;
  }

  clear(): void {
    this.#due.clear();
  }
}

export function retryKey(consumer: string, messageId: string, attempt: number): string {
  return `${consumer}\u0000${messageId}\u0000${attempt}`;
}

export interface SendOffDeps {
  prefix: string;
  maxAttempts: number;
  backoffBaseMs: number;
  confirmTimeoutMs: number;
  log: Logger;
  signal: StopSignal;
  retries: ParkedRetries;
}

/**
 * After a failed attempt: to the retry queue whose TTL is the backoff, or to the dead-letter
 * queue; the original is acked only once RabbitMQ confirmed the copy. Until then it stays
 * unacked in our hands: a confirm that timed out or a nack (a resource alarm) is tried again
 * after a pause — not requeued, which would count against x-delivery-limit. A copy no queue took
 * (a queue deleted from outside) abandons the session: the reconnect declares the topology again
 * and RabbitMQ redelivers the original. Possible duplicate copies are deduped by message id.
 */
export async function sendOff(deps: SendOffDeps, consumer: string, delivery: Delivery, attempt: number, error: unknown, dead: boolean, uncounted = false): Promise<void> {
  const { session } = delivery;
  // An uncounted attempt (the database unreachable) comes back with the same number, after at most
  // the longest backoff a retry queue has (queues exist for attempts 1 … maxAttempts-1).
  const next = uncounted ? attempt : attempt + 1;
  const ttl = retryTtl(uncounted ? Math.min(attempt, deps.maxAttempts - 1) : attempt, deps.backoffBaseMs);
  const queue = dead ? names.dlq(deps.prefix, consumer) : names.retry(deps.prefix, consumer, ttl);
  const id = messageIdOf(delivery.message);
  const key = id && !dead ? retryKey(consumer, id, next) : undefined;
  for (let pause = 100; ; pause = Math.min(pause * 2, 5000)) {
    if (!session.owns(delivery.channel) || deps.signal.stopping) return; // RabbitMQ redelivers it
    if (key) deps.retries.expect(key, ttl);
    const result = await publishCopy(deps, delivery, queue, dead ? attempt : next, error);
    if (result.ok) {
      ack(delivery);
      return;
    }
    if (key) deps.retries.forget(key);
    if (result.reason === 'unroutable') {
      deps.log.warn({ consumer, messageId: id, queue, err: result.error }, 'no queue took a failed message; declaring the topology again');
      session.fail(result.error);
      return;
    }
    deps.log.warn({ consumer, messageId: id, queue, err: result.error }, 'could not park a failed message yet; holding it and trying again');
    await deps.signal.pause(pause);
  }
}

function traceHeaderOf(delivery: Delivery): Record<string, string> {
  const traceparent: unknown = delivery.message.properties.headers?.[TRACEPARENT_HEADER];
  return typeof traceparent === 'string' ? { [TRACEPARENT_HEADER]: traceparent } : {};
}

/** The failed message, as it came, to `queue` with its next attempt number and the error. */
function publishCopy(deps: SendOffDeps, delivery: Delivery, queue: string, attempt: number, error: unknown): Promise<PublishOutcome> {
  const properties = delivery.message.properties;
  const { outcome } = publishConfirmed(
    delivery.session.confirm, names.direct(deps.prefix), queue, delivery.message.content,
    {
      messageId: messageIdOf(delivery.message), type: topicOf(delivery.message), contentType: properties.contentType as string | undefined,
      timestamp: properties.timestamp as number | undefined, appId: 'flashsale', mandatory: true,
      headers: { [ATTEMPT_HEADER]: attempt, [LAST_ERROR_HEADER]: String(error).slice(0, 2000), ...traceHeaderOf(delivery) },
    },
    deps.confirmTimeoutMs,
  );
  return outcome;
}
