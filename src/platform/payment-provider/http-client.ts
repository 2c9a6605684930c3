import type { Config } from '../config.ts';
import { encodeForm, type Form } from './form-encoding.ts';
import { GatewayError, type PaymentGateway, type PaymentIntent, type Refund } from './port.ts';
import { verifySignature } from './webhook-signature.ts';
import { errorDetail, parseEvent, parseJson, toIntent, toListPage, toRefund, type HttpGatewayEvent } from './wire.ts';

export type { HttpGatewayEvent } from './wire.ts';

export interface HttpGatewayOptions {
  /** The provider's base URL, e.g. http://127.0.0.1:3001 (the simulator) or https://api.stripe.com. */
  baseUrl: string;
  apiKey: string;
  /** Accepted webhook signing secrets: more than one while a secret is being rolled. */
  webhookSecrets: readonly string[];
  /** Per call; a call that takes longer fails with a retryable GatewayError. */
  timeoutMs: number;
  /** Webhook timestamps further than this from now (either way) are refused. */
  toleranceS: number;
  /** Injectable for tests; defaults to the global fetch. */
  fetch?: typeof fetch;
}

/**
 * PaymentGateway over HTTP, speaking Stripe's wire format (form-encoded bodies with bracket
 * notation, bearer API key, Idempotency-Key, `t=…,v1=…` webhook signatures). Points at the shipped
 * simulator (src/psp) or at the real provider.
 *
 * Errors: network failures, timeouts, 5xx, 409 and 429 are `GatewayError(retryable=true)` — retry
 * with the SAME idempotency key, the provider may have acted; other 4xx are `retryable=false` with
 * the status.
 */
export class HttpPaymentGateway implements PaymentGateway {
  readonly #opts: HttpGatewayOptions;
  readonly #base: string;
  readonly #fetch: typeof fetch;

  constructor(opts: HttpGatewayOptions) {
    if (opts.webhookSecrets.length === 0) throw new Error('HttpPaymentGateway needs at least one webhook secret');
    this.#opts = opts;
    this.#base = opts.baseUrl.replace(/\/+$/, '');
    this.#fetch = opts.fetch ?? fetch;
  }

  /** From the config: PSP_URL, PSP_API_KEY, PSP_WEBHOOK_SECRET (comma-separated list allowed), PSP_TIMEOUT_MS, PSP_WEBHOOK_TOLERANCE_S. */
  static fromConfig(config: Pick<Config, 'PSP_URL' | 'PSP_API_KEY' | 'PSP_WEBHOOK_SECRET' | 'PSP_TIMEOUT_MS' | 'PSP_WEBHOOK_TOLERANCE_S'>): HttpPaymentGateway {
    return new HttpPaymentGateway({
      baseUrl: config.PSP_URL,
      apiKey: config.PSP_API_KEY,
      webhookSecrets: config.PSP_WEBHOOK_SECRET.split(',').map((s) => s.trim()).filter(Boolean),
      timeoutMs: config.PSP_TIMEOUT_MS,
      toleranceS: config.PSP_WEBHOOK_TOLERANCE_S,
    });
  }

  async createIntent(input: { amount: number; currency: string; orderId: string; idempotencyKey: string; returnUrl?: string }): Promise<PaymentIntent> {
    const body = await this.#call('POST', '/v1/payment_intents', {
      amount: input.amount,
      currency: input.currency.toLowerCase(),
      metadata: { order_id: input.orderId },
      // Where the hosted page sends the buyer once they have paid or declined.
      ...(input.returnUrl ? { return_url: input.returnUrl } : {}),
    }, input.idempotencyKey);
    return toIntent(body);
  }

  async retrieveIntent(intentId: string): Promise<PaymentIntent> {
    return toIntent(await this.#call('GET', `/v1/payment_intents/${encodeURIComponent(intentId)}`));
  }

  /** Idempotent: cancelling an already-cancelled intent returns it; a succeeded one throws (not retryable). */
  async cancelIntent(intentId: string): Promise<PaymentIntent> {
    try {
      return toIntent(await this.#call('POST', `/v1/payment_intents/${encodeURIComponent(intentId)}/cancel`, {}, `cancel-${intentId}`));
    } catch (error) {
      if (!(error instanceof ProviderError) || error.code !== 'payment_intent_unexpected_state') throw error;
      const current = await this.retrieveIntent(intentId);
      if (current.status === 'canceled') return current;
      throw new GatewayError(`cannot cancel payment intent ${intentId}: it is ${current.status}`, false, error.status);
    }
  }

  async refund(input: { intentId: string; amount: number; idempotencyKey: string }): Promise<Refund> {
    const body = await this.#call('POST', '/v1/refunds', { payment_intent: input.intentId, amount: input.amount }, input.idempotencyKey);
    return toRefund(body);
  }

  async listIntents(): Promise<PaymentIntent[]> {
    return (await this.#listAll('/v1/payment_intents')).map(toIntent);
  }

  async listRefunds(): Promise<Refund[]> {
    return (await this.#listAll('/v1/refunds')).map(toRefund);
  }

  verifyWebhook(rawBody: string, signatureHeader: string | undefined, nowMs: number): HttpGatewayEvent {
    verifySignature(rawBody, signatureHeader, nowMs, this.#opts);
    return parseEvent(rawBody);
  }

  /** Follows a Stripe list (newest first, `starting_after` cursor) to its end; answers oldest first. */
  async #listAll(path: string): Promise<unknown[]> {
    const all: unknown[] = [];
    let after: string | undefined;
    for (;;) {
      const query = new URLSearchParams({ limit: '100', ...(after ? { starting_after: after } : {}) });
      const page = toListPage(await this.#readPage(`${path}?${query}`), path);
      all.push(...page.data);
      if (page.nextAfter === undefined) return all.reverse();
      after = page.nextAfter;
    }
  }

  /** A read changes nothing at the provider: a retryable failure is retried a few times before giving up. */
  async #readPage(path: string, attempts = 4): Promise<unknown> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.#call('GET', path);
      } catch (error) {
        if (!(error instanceof GatewayError) || !error.retryable || attempt >= attempts) throw error;
      }
    }
  }

  async #call(method: 'GET' | 'POST', path: string, form?: Form, idempotencyKey?: string): Promise<unknown> {
    const what = `${method} ${path}`;
    const { response, text } = await this.#exchange(what, path, requestInit(method, this.#opts.apiKey, form, idempotencyKey));
    return answerOf(what, response, text);
  }

  /** Sends the request and reads the whole answer; no answer in time, or none at all, is a retryable GatewayError. */
  async #exchange(what: string, path: string, init: RequestInit): Promise<{ response: Response; text: string }> {
    try {
      const response = await this.#fetch(`${this.#base}${path}`, { ...init, signal: AbortSignal.timeout(this.#opts.timeoutMs), redirect: 'error' });
      return { response, text: await response.text() };
    } catch (error) {
      const timedOut = error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError');
      throw new GatewayError(`${what}: ${timedOut ? `no answer within ${this.#opts.timeoutMs} ms` : `network error: ${describe(error)}`}`, true, undefined);
    }
  }
}

/** A GatewayError with the provider's error code (e.g. `payment_intent_unexpected_state`). */
export class ProviderError extends GatewayError {
  readonly code: string | undefined;

  constructor(message: string, retryable: boolean, status: number, code: string | undefined) {
    super(message, retryable, status);
    this.code = code;
  }
}

/** Bearer key and JSON answers; a POST carries its form and, when given, its Idempotency-Key. */
function requestInit(method: 'GET' | 'POST', apiKey: string, form: Form | undefined, idempotencyKey: string | undefined) {
  const headers: Record<string, string> = {
    authorization: `Bearer ${apiKey}`,
    accept: 'application/json',
    'user-agent': 'flashsale/0.1 (HttpPaymentGateway)',
  };
  let body: string | undefined;
  if (method === 'POST') {
    headers['content-type'] = 'application/x-www-form-urlencoded';
    body = encodeForm(form ?? {});
    if (idempotencyKey !== undefined) headers['idempotency-key'] = idempotencyKey;
  }
  return { method, headers, body };
}

/** A 2xx answer's JSON; any other status a ProviderError, retryable as Stripe-Should-Retry says or else for 5xx, 409 and 429. */
function answerOf(what: string, response: Response, text: string): unknown {
  const parsed = parseJson(text);
  if (response.status >= 200 && response.status < 300) {
    if (parsed === undefined) throw new GatewayError(`${what}: answer is not JSON`, true, response.status);
    return parsed;
  }
  const detail = errorDetail(parsed);
  const message = `${what}: ${response.status}${detail.code ? ` ${detail.code}` : ''}${detail.message ? `: ${detail.message}` : ''}`;
  const shouldRetry = response.headers.get('stripe-should-retry');
  const retryable = shouldRetry !== null ? shouldRetry === 'true' : response.status >= 500 || response.status === 409 || response.status === 429;
  throw new ProviderError(message, retryable, response.status, detail.code);
}

function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause instanceof Error ? ` (${(error.cause as NodeJS.ErrnoException).code ?? error.cause.message})` : '';
  return `${error.message}${cause}`;
}
