import type { ConfirmChannel, Message, Options } from 'amqplib';

/** timeout: unknown (maybe enqueued); nack: refused; unroutable: no queue took it (mandatory); closed: channel gone. */
export type PublishFailure = 'timeout' | 'nack' | 'unroutable' | 'closed';
export type PublishOutcome = { ok: true } | { ok: false; error: Error; reason: PublishFailure };

export class ConfirmTimeoutError extends Error {
  override name = 'ConfirmTimeoutError';
}

/**
 * Publishes on a confirm channel and waits for the broker's confirm, at most `timeoutMs`.
 *
 * amqplib trap: when the connection drops silently, the confirm callback may never be called. So
 * every confirm has a timeout, and a timeout means "unknown" — the message may or may not be in
 * the queue. Callers treat unknown as not sent and publish again later; consumers dedupe by
 * message id. The returned promise never rejects (a rejection noticed late would be "unhandled").
 *
 * With `mandatory`, a message no queue took counts as failed.
 *
 * `writable` is false when the socket buffer is full: the caller should wait for the channel's
 * 'drain' before publishing more (see waitForDrain).
 */
export function publishConfirmed(
  channel: ConfirmChannel,
  exchange: string,
  routingKey: string,
  body: Buffer,
  options: Options.Publish,
  timeoutMs: number,
): { writable: boolean; outcome: Promise<PublishOutcome> } {
  let settle: (outcome: PublishOutcome) => void = () => {};
  const outcome = new Promise<PublishOutcome>((resolve) => {
    let settled = false;
    const timer = setTimeout(() => {
      finish({ ok: false, error: new ConfirmTimeoutError(`no publisher confirm within ${timeoutMs} ms (routing key ${routingKey})`), reason: 'timeout' });
    }, timeoutMs);
    timer.unref?.();
    const finish = (result: PublishOutcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(result);
    };
    settle = finish;
  });
  // mandatory: RabbitMQ returns (basic.return, before its ack) a message no queue took; an ack alone
  // would hide that it went nowhere.
  let returned = false;
  if (options.mandatory) {
    const stopWatching = watchReturns(channel, routingKey, options.messageId, () => { returned = true; });
    void outcome.then(stopWatching);
  }
  let writable = true;
  try {
    writable = channel.publish(exchange, routingKey, body, { ...options, persistent: true }, (err: unknown) => {
      if (err) {
        const error = err instanceof Error ? err : new Error(String(err));
        settle({ ok: false, error, reason: /closed/i.test(error.message) ? 'closed' : 'nack' });
      } else if (returned) settle({ ok: false, error: new Error(`no queue is bound to ${exchange} with routing key ${routingKey}`), reason: 'unroutable' });
      else settle({ ok: true });
    });
  } catch (error) {
    // amqplib throws synchronously when the channel is already closed.
    settle({ ok: false, error: error instanceof Error ? error : new Error(String(error)), reason: 'closed' });
  }
  return { writable, outcome };
}

/** Per confirm channel, the mandatory publishes awaiting their confirm, by routing key and message id. */
const watchers = new WeakMap<ConfirmChannel, Map<string, Set<() => void>>>();

/**
 * Calls `onReturned` if RabbitMQ returns this message; the returned function stops watching. One
 * 'return' listener per channel, not one per publish in flight (which passed Node's limit of 10
 * listeners under load, with a warning of a leak that was none).
 */
function watchReturns(channel: ConfirmChannel, routingKey: string, messageId: string | undefined, onReturned: () => void): () => void {
  const byKey = returnWatchers(channel);
  const key = returnKey(routingKey, messageId);
  const waiting = byKey.get(key) ?? new Set<() => void>();
  waiting.add(onReturned);
  byKey.set(key, waiting);
  return () => {
    waiting.delete(onReturned);
    if (waiting.size === 0 && byKey.get(key) === waiting) byKey.delete(key);
  };
}

function returnWatchers(channel: ConfirmChannel): Map<string, Set<() => void>> {
  const known = watchers.get(channel);
  if (known) return known;
  const byKey = new Map<string, Set<() => void>>();
  channel.on('return', (message: Message) => {
    for (const returned of byKey.get(returnKey(message.fields.routingKey, message.properties.messageId)) ?? []) returned();
  });
  watchers.set(channel, byKey);
  return byKey;
}

const returnKey = (routingKey: string, messageId: unknown) => `${routingKey}\u0000${String(messageId)}`;

/** Waits for the channel's write buffer to drain, or for the channel to close, or `timeoutMs`. */
export function waitForDrain(channel: ConfirmChannel, timeoutMs: number): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      channel.off('drain', done);
      channel.off('close', done);
      resolve();
    };
    const timer = setTimeout(done, timeoutMs);
    timer.unref?.();
    channel.once('drain', done);
    channel.once('close', done);
  });
}

export class AmqpTimeoutError extends Error {
  override name = 'AmqpTimeoutError';
}

/** Rejects with `message` if `promise` does not settle within `ms` (amqplib RPCs have no timeout of their own). */
export function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new AmqpTimeoutError(message)), ms);
    timer.unref?.();
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  });
}
