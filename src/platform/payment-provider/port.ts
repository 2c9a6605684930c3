/**
 * The payment gateway port: what flashsale needs from a payment service provider. The wire format
 * of the shipped simulator (src/psp) follows the best-known provider's (payment intents, refunds,
 * `t=…,v1=…` HMAC-SHA256 webhook signatures), so a real provider can replace it by configuration.
 */
export type IntentStatus = 'requires_payment_method' | 'requires_confirmation' | 'processing' | 'succeeded' | 'canceled';

export interface PaymentIntent {
  /** Provider id, `pi_…`. */
  id: string;
  amount: number;
  currency: string;
  status: IntentStatus;
  /** Our order id, echoed back in webhooks (`metadata.order_id`). */
  orderId: string;
  /** Where the buyer pays (the provider's hosted page). */
  hostedUrl: string;
  /** Set when the last payment attempt was declined. */
  lastError: string | null;
}

export interface Refund {
  /** Provider id, `re_…`. */
  id: string;
  paymentIntentId: string;
  amount: number;
  status: 'succeeded' | 'pending' | 'failed';
}

/** A verified webhook event. */
export interface GatewayEvent {
  /** Provider event id, `evt_…`: the dedupe key. */
  id: string;
  type: 'payment_intent.succeeded' | 'payment_intent.payment_failed' | 'payment_intent.canceled' | 'charge.refunded' | string;
  /** Seconds since epoch, from the provider. */
  created: number;
  intent: PaymentIntent | undefined;
}

export class GatewayError extends Error {
  override name = 'GatewayError';
  readonly retryable: boolean;
  readonly status?: number;

  constructor(message: string, retryable: boolean, status?: number) {
    super(message);
    this.retryable = retryable;
    this.status = status;
  }
}

export class WebhookVerificationError extends Error {
  override name = 'WebhookVerificationError';
}

export interface PaymentGateway {
  /** Idempotent per `idempotencyKey`: the same key returns the same intent. */
  createIntent(input: { amount: number; currency: string; orderId: string; idempotencyKey: string; returnUrl?: string }): Promise<PaymentIntent>;
  retrieveIntent(intentId: string): Promise<PaymentIntent>;
  /** Cancels an unpaid intent; throws GatewayError (not retryable) if it already succeeded. */
  cancelIntent(intentId: string): Promise<PaymentIntent>;
  /** Idempotent per `idempotencyKey`. */
  refund(input: { intentId: string; amount: number; idempotencyKey: string }): Promise<Refund>;
  /** Every payment intent on the account, oldest first, every page fetched (reconciliation reads it all). */
  listIntents(): Promise<PaymentIntent[]>;
  /** Every refund on the account, oldest first, every page fetched. */
  listRefunds(): Promise<Refund[]>;
  /**
   * Verifies a webhook's signature header against the raw body and the tolerance window, then
   * parses it. Throws WebhookVerificationError on a bad, missing, stale or future signature.
   */
  verifyWebhook(rawBody: string, signatureHeader: string | undefined, nowMs: number): GatewayEvent;
}
