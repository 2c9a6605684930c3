import type { SmsMessage, SmsSender } from './port.ts';

export interface HttpSmsOptions {
  url: string;
  apiKey: string;
  from: string;
  timeoutMs: number;
}

/** The provider refused or failed the message; `retryable` unless it said the request itself is wrong (4xx). */
export class SmsError extends Error {
  override name = 'SmsError';
  readonly retryable: boolean;

  constructor(message: string, retryable: boolean, options: { cause?: unknown } = {}) {
    super(message, options);
    this.retryable = retryable;
  }
}

/**
 * The SMS port over HTTP: `POST {url}/v1/messages` with `{ to, from, text }`, the bearer key, and
 * the notice's id as `Idempotency-Key` — a resend after a timeout (the provider may have taken it)
 * is the same message at the provider, not a second text on the buyer's phone.
 */
export class HttpSmsSender implements SmsSender {
  readonly kind = 'http';
  readonly #options: HttpSmsOptions;

  constructor(options: HttpSmsOptions) {
    this.#options = { ...options, url: options.url.replace(/\/+$/, '') };
  }

  async send(message: SmsMessage): Promise<{ providerId: string }> {
    const { url, apiKey, from, timeoutMs } = this.#options;
    let response: Response;
    try {
      response = await fetch(`${url}/v1/messages`, {
        method: 'POST',
        headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json', 'idempotency-key': message.messageId },
        body: JSON.stringify({ to: message.to, from, text: message.text }),
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (error) {
      throw new SmsError(`SMS provider unreachable or too slow: ${error instanceof Error ? error.message : String(error)}`, true, { cause: error });
    }
    const body = await response.json().catch(() => undefined) as { id?: unknown; error?: { message?: unknown } } | undefined;
    if (!response.ok) {
      throw new SmsError(`SMS provider answered ${response.status}: ${String(body?.error?.message ?? 'no reason')}`, response.status >= 500 || response.status === 429);
    }
    if (typeof body?.id !== 'string') throw new SmsError('SMS provider answered without a message id', true);
    return { providerId: body.id };
  }
}
