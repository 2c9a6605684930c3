import {
  GatewayError, WebhookVerificationError,
  type GatewayEvent, type IntentStatus, type PaymentIntent, type Refund,
} from './port.ts';
import { assertStorable } from './storable-text.ts';

/**
 * Reading what the provider sends — its objects (payment intent, refund, event, list page) and its
 * error bodies — into the gateway's types. Fields we do not use are ignored.
 */

/** A verified event, with what a refund event carries (it names the intent but is not one). */
export interface HttpGatewayEvent extends GatewayEvent {
  /** The payment intent the event is about: the intent's id, or a refund's `payment_intent`. */
  intentId: string | undefined;
  /** Set for `charge.refunded`. */
  refund: Refund | undefined;
}

const INTENT_STATUSES: readonly string[] = ['requires_payment_method', 'requires_confirmation', 'processing', 'succeeded', 'canceled'];

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

export function toIntent(value: unknown): PaymentIntent {
  if (!isObject(value) || value.object !== 'payment_intent' || typeof value.id !== 'string' || typeof value.amount !== 'number') {
    throw new GatewayError('provider answered something that is not a payment intent', false);
  }
  const metadata = isObject(value.metadata) ? value.metadata : {};
  const nextAction = isObject(value.next_action) ? value.next_action : {};
  const redirect = isObject(nextAction.redirect_to_url) ? nextAction.redirect_to_url : {};
  const lastError = isObject(value.last_payment_error) ? value.last_payment_error : undefined;
  return {
    id: value.id,
    amount: value.amount,
    currency: str(value.currency) ?? '',
    status: toIntentStatus(str(value.status) ?? ''),
    orderId: str(metadata.order_id) ?? '',
    hostedUrl: str(redirect.url) ?? '',
    lastError: lastError ? str(lastError.message) ?? str(lastError.code) ?? 'payment failed' : null,
  };
}

function toIntentStatus(rawStatus: string): IntentStatus {
  // `requires_action` (3-D Secure and the like) is, for us, still waiting for the buyer.
  return (INTENT_STATUSES.includes(rawStatus) ? rawStatus : rawStatus === 'requires_action' || rawStatus === 'requires_capture' ? 'processing' : 'requires_payment_method') as IntentStatus;
}

export function toRefund(value: unknown): Refund {
  if (!isObject(value) || value.object !== 'refund' || typeof value.id !== 'string' || typeof value.amount !== 'number') {
    throw new GatewayError('provider answered something that is not a refund', false);
  }
  const status = str(value.status);
  return {
    id: value.id,
    paymentIntentId: str(value.payment_intent) ?? '',
    amount: value.amount,
    status: status === 'succeeded' || status === 'failed' ? status : 'pending',
  };
}

/** A webhook's body (its signature already verified) as the event it carries. */
export function parseEvent(rawBody: string): HttpGatewayEvent {
  let event: unknown;
  try {
    event = JSON.parse(rawBody);
  } catch {
    throw new WebhookVerificationError('body is not JSON');
  }
  return toEvent(event);
}

function toEvent(value: unknown): HttpGatewayEvent {
  if (!isObject(value) || value.object !== 'event' || typeof value.id !== 'string' || typeof value.type !== 'string') {
    throw new WebhookVerificationError('body is not an event');
  }
  const object = isObject(value.data) && isObject(value.data.object) ? value.data.object : undefined;
  let intent: PaymentIntent | undefined;
  let refund: Refund | undefined;
  let intentId: string | undefined;
  if (object?.object === 'payment_intent') {
    intent = toIntent(object);
    intentId = intent.id;
  } else if (object?.object === 'refund') {
    refund = toRefund(object);
    intentId = refund.paymentIntentId || undefined;
  } else if (object && typeof object.payment_intent === 'string') {
    intentId = object.payment_intent; // a charge, as the real provider sends with charge.refunded
  }
  const event = { id: value.id, type: value.type, created: typeof value.created === 'number' ? value.created : 0, intent, intentId, refund };
  assertStorable(event);
  return event;
}

/** One page of a Stripe list, and the cursor (`starting_after`) for the next one: undefined on the last page. */
export function toListPage(value: unknown, path: string): { data: unknown[]; nextAfter: string | undefined } {
  if (!isObject(value) || !Array.isArray(value.data)) throw new GatewayError(`GET ${path}: answer is not a list`, false);
  const last: unknown = value.data.at(-1);
  const nextAfter = value.has_more === true && isObject(last) && typeof last.id === 'string' ? last.id : undefined;
  return { data: value.data, nextAfter };
}

/** An answer's body as JSON; undefined when it is empty or not JSON. */
export function parseJson(text: string): unknown {
  try {
    return text ? JSON.parse(text) : undefined;
  } catch {
    return undefined;
  }
}

/** Stripe's error body `{ error: { type, code, message } }`, as a code and a message (with the type). */
export function errorDetail(body: unknown): { code: string | undefined; message: string | undefined } {
  const error = isObject(body) && isObject(body.error) ? body.error : {};
  const message = str(error.message);
  const type = str(error.type);
  return { code: str(error.code), message: type && message ? `${message} (${type})` : message ?? type };
}
