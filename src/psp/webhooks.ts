import { createHmac } from 'node:crypto';
import type { Logger } from '../platform/logger.ts';
import type { Knobs } from './knobs.ts';
import type { EventObject } from './state.ts';

/**
 * The `Stripe-Signature` header: `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`, one
 * `v1` per secret (a provider signs with the old and the new secret while one is being rolled).
 */
export function signatureHeader(body: string, timestampS: number, secrets: readonly string[]): string {
  const signatures = secrets.map((secret) => `v1=${createHmac('sha256', secret).update(`${timestampS}.${body}`).digest('hex')}`);
  return [`t=${timestampS}`, ...signatures].join(',');
}

export interface RetryPolicy {
  /** Delivery attempts per copy of an event, first one included. */
  attempts: number;
  /** Wait before the second attempt; doubles each time, capped at `maxMs`. */
  baseMs: number;
  maxMs: number;
}

export interface DeliveryOutcome {
  delivered: boolean;
  attempts: number;
  status: number | null;
  error: string | null;
}

export interface DispatcherOptions {
  url: string;
  secrets: readonly string[];
  /** Milliseconds since epoch. */
  now: () => number;
  knobs: () => Knobs;
  retry: RetryPolicy;
  /** How long one delivery attempt may take before it counts as failed. */
  attemptTimeoutMs: number;
  onOutcome: (eventId: string, outcome: DeliveryOutcome) => void;
  log: Logger;
}

/**
 * Posts events to the webhook endpoint like a provider does: signed, retried with exponential
 * backoff on a non-2xx answer or a network error, optionally delayed, and (with the reorder knob)
 * held briefly and sent newest first. Dropping and duplicating are decided when the event is created.
 */
export class WebhookDispatcher {
  readonly #opts: DispatcherOptions;
  readonly #timers = new Set<NodeJS.Timeout>();
  readonly #abort = new AbortController();
  #held: EventObject[] = [];
  #flushTimer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(opts: DispatcherOptions) {
    this.#opts = opts;
  }

  /** Sends `copies` deliveries of the event (0: dropped). */
  schedule(event: EventObject, copies: number): void {
    for (let i = 0; i < copies; i++) {
      const delay = this.#opts.knobs().webhookDelayMs;
      if (delay > 0) this.#after(delay, () => this.#route(event));
      else this.#route(event);
    }
  }

  /** Stops every pending delivery and retry; in-flight posts are aborted. */
  close(): void {
    this.#closed = true;
    this.#abort.abort();
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    this.#held = [];
  }

  #route(event: EventObject): void {
    const knobs = this.#opts.knobs();
    if (!knobs.webhookReorder) {
      void this.#deliver(event, 1);
      return;
    }
    this.#held.push(event);
    this.#flushTimer ??= this.#after(knobs.webhookReorderWindowMs, () => {
      this.#flushTimer = undefined;
      void this.#flush();
    });
  }

  /** Newest first, one after the other, so the receiver sees them in exactly reverse order. */
  async #flush(): Promise<void> {
    const batch = this.#held.reverse();
    this.#held = [];
    for (const event of batch) await this.#deliver(event, 1);
  }

  async #deliver(event: EventObject, attempt: number): Promise<void> {
    if (this.#closed) return;
    const { url, secrets, now, retry, attemptTimeoutMs, log } = this.#opts;
    const body = JSON.stringify(event);
    let status: number | null = null;
    let error: string | null = null;
    try {
      const response = await fetch(url, {
        method: 'POST',
        redirect: 'manual',
        headers: {
          'content-type': 'application/json; charset=utf-8',
          'user-agent': 'flashsale-psp/1.0 (+webhooks)',
          'stripe-signature': signatureHeader(body, Math.floor(now() / 1000), secrets),
        },
        body,
        signal: AbortSignal.any([this.#abort.signal, AbortSignal.timeout(attemptTimeoutMs)]),
      });
      status = response.status;
      await response.body?.cancel().catch(() => undefined);
    } catch (e) {
      error = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
    }
    if (this.#closed) return;
    const ok = status !== null && status >= 200 && status < 300;
    if (!ok && attempt < retry.attempts) {
      const wait = Math.min(retry.maxMs, retry.baseMs * 2 ** (attempt - 1));
      log.debug({ eventId: event.id, attempt, status, error, retryInMs: wait }, 'webhook delivery failed, will retry');
      this.#after(wait, () => void this.#deliver(event, attempt + 1));
      return;
    }
    if (!ok) log.warn({ eventId: event.id, attempts: attempt, status, error }, 'webhook delivery failed for good');
    this.#opts.onOutcome(event.id, { delivered: ok, attempts: attempt, status, error });
  }

  #after(ms: number, run: () => void): NodeJS.Timeout {
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      if (!this.#closed) run();
    }, ms);
    timer.unref();
    this.#timers.add(timer);
    return timer;
  }
}
