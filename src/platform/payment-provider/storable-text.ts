import { hasLoneSurrogate } from '../unicode.ts';
import type { HttpGatewayEvent } from './wire.ts';

/**
 * The event's text the payment component stores must be storable: PostgreSQL refuses a NUL and a
 * lone UTF-16 surrogate (valid JSON: "\ud800"), which would fail its transaction as a 500. A plain
 * Error, not a WebhookVerificationError: the signature is genuine, the content malformed (→ 422).
 */
export function assertStorable(event: HttpGatewayEvent): void {
  const texts: Array<[string, string | null | undefined]> = [
    ['event id', event.id], ['event type', event.type],
    ['intent id', event.intent?.id], ['currency', event.intent?.currency], ['metadata.order_id', event.intent?.orderId],
    ['last_payment_error', event.intent?.lastError], ['refund id', event.refund?.id], ['payment_intent', event.intentId],
  ];
  for (const [field, text] of texts) {
    if (text && (text.includes('\u0000') || hasLoneSurrogate(text))) {
      throw new Error(`webhook event's ${field} holds text that cannot be stored (a NUL or a lone UTF-16 surrogate)`);
    }
  }
}
