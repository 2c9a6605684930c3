import { randomBytes } from 'node:crypto';
import { PspError } from './errors.ts';
import type { Knobs } from './knobs.ts';
import { missing, readAmount, readBoolean, readCurrency, readMetadata, readString, readUrl, type Params } from './params.ts';
import type { EventObject, EventType, IntentObject, Op, PaymentError, PspStore, RefundObject } from './state.ts';

/** What a handled call answers, and the changes it made (journaled in one batch before the answer). */
export interface Result {
  status: number;
  body: unknown;
  ops: Op[];
}

/** Who asked: echoed in events as `request`, like Stripe's. */
export interface RequestContext {
  requestId: string | null;
  idempotencyKey: string | null;
}

export const API_VERSION = '2024-06-20';
const UNEXPECTED = 'payment_intent_unexpected_state';
const CANCELABLE = ['requires_payment_method', 'requires_confirmation', 'requires_action', 'processing'];

/** Test payment methods with the outcome Stripe's test mode gives them. */
const DECLINING_METHODS: Record<string, { decline_code: string; message: string }> = {
  pm_card_chargeDeclined: { decline_code: 'generic_decline', message: 'Your card was declined.' },
  pm_card_visa_chargeDeclined: { decline_code: 'generic_decline', message: 'Your card was declined.' },
  pm_card_chargeDeclinedInsufficientFunds: { decline_code: 'insufficient_funds', message: 'Your card has insufficient funds.' },
  pm_card_chargeDeclinedFraudulent: { decline_code: 'fraudulent', message: 'Your card was declined.' },
};
const GENERIC_DECLINE = DECLINING_METHODS.pm_card_chargeDeclined!;

export function newId(prefix: string): string {
  return `${prefix}_${randomBytes(12).toString('hex')}`;
}

export interface CoreDeps {
  store: PspStore;
  knobs: () => Knobs;
  random: () => number;
  /** Milliseconds since epoch. */
  now: () => number;
  /** Base of the hosted page links. */
  publicUrl: () => string;
}

/**
 * The simulator's operations. Each one is synchronous: it reads the state, decides, and returns the
 * changes, so no other request can interleave between the check and the effect.
 */
export class PspCore {
  private readonly deps: CoreDeps;

  constructor(deps: CoreDeps) {
    this.deps = deps;
  }

  get store(): PspStore {
    return this.deps.store;
  }

  intent(id: string, param = 'intent'): IntentObject {
    const intent = this.deps.store.intents.get(id);
    if (!intent) throw new PspError(404, 'invalid_request_error', `No such payment_intent: '${id}'`, 'resource_missing', param);
    return intent;
  }

  refundById(id: string): RefundObject {
    const refund = this.deps.store.refunds.get(id);
    if (!refund) throw new PspError(404, 'invalid_request_error', `No such refund: '${id}'`, 'resource_missing', 'id');
    return refund;
  }

  eventById(id: string): EventObject {
    const event = this.deps.store.eventsById.get(id);
    if (!event) throw new PspError(404, 'invalid_request_error', `No such event: '${id}'`, 'resource_missing', 'id');
    return event;
  }

  createIntent(params: Params, ctx: RequestContext): Result {
    const amount = readAmount(params, 'amount');
    if (amount === undefined) throw missing('amount');
    const currency = readCurrency(params);
    const metadata = readMetadata(params);
    const returnUrl = readUrl(params, 'return_url');
    const id = newId('pi');
    const intent: IntentObject = {
      id,
      object: 'payment_intent',
      amount,
      amount_received: 0,
      currency,
      status: 'requires_payment_method',
      client_secret: `${id}_secret_${randomBytes(12).toString('hex')}`,
      metadata,
      description: readString(params, 'description') ?? null,
      created: this.#seconds(),
      canceled_at: null,
      cancellation_reason: null,
      capture_method: 'automatic',
      confirmation_method: 'automatic',
      payment_method: null,
      payment_method_types: ['card'],
      last_payment_error: null,
      next_action: { type: 'redirect_to_url', redirect_to_url: { url: `${this.deps.publicUrl().replace(/\/+$/, '')}/pay/${id}`, return_url: returnUrl ?? null } },
      livemode: false,
    };
    const ops: Op[] = [{ op: 'intent', intent }];
    if (readBoolean(params, 'confirm')) {
      const method = readString(params, 'payment_method');
      const confirmed = this.#confirm(intent, method ?? null, ctx);
      return { ...confirmed, ops: [...ops, ...confirmed.ops] };
    }
    return { status: 200, body: intent, ops };
  }

  /**
   * `payment_method` decides (pm_card_visa succeeds, pm_card_chargeDeclined declines); without one
   * the decline-rate knob does. A decline answers 402 `card_error` like Stripe, with the intent
   * back in `requires_payment_method` and its `last_payment_error` set.
   */
  confirm(id: string, params: Params, ctx: RequestContext): Result {
    const intent = this.intent(id);
    const method = readString(params, 'payment_method');
    const returnUrl = readUrl(params, 'return_url');
    const base = returnUrl && intent.next_action
      ? { ...intent, next_action: { ...intent.next_action, redirect_to_url: { ...intent.next_action.redirect_to_url, return_url: returnUrl } } }
      : intent;
    return this.#confirm(base, method ?? null, ctx);
  }

  cancel(id: string, params: Params, ctx: RequestContext): Result {
    const intent = this.intent(id);
    if (!CANCELABLE.includes(intent.status)) {
      throw new PspError(400, 'invalid_request_error',
        `You cannot cancel this PaymentIntent because it has a status of ${intent.status}. Only a PaymentIntent with one of the following statuses may be canceled: ${CANCELABLE.join(', ')}.`,
        UNEXPECTED);
    }
    const reason = readString(params, 'cancellation_reason');
    if (reason !== undefined && !['duplicate', 'fraudulent', 'requested_by_customer', 'abandoned'].includes(reason)) {
      throw new PspError(400, 'invalid_request_error', `Invalid cancellation_reason: must be one of duplicate, fraudulent, requested_by_customer, or abandoned`, 'parameter_invalid_string', 'cancellation_reason');
    }
    const canceled: IntentObject = { ...intent, status: 'canceled', canceled_at: this.#seconds(), cancellation_reason: reason ?? null, next_action: null };
    return { status: 200, body: canceled, ops: [{ op: 'intent', intent: canceled }, this.#event('payment_intent.canceled', canceled, ctx)] };
  }

  refund(params: Params, ctx: RequestContext): Result {
    const intentId = readString(params, 'payment_intent');
    if (intentId === undefined) throw missing('payment_intent');
    const intent = this.intent(intentId, 'payment_intent');
    if (intent.status !== 'succeeded') {
      throw new PspError(400, 'invalid_request_error', `This PaymentIntent (${intent.id}) does not have a successful charge to refund.`, UNEXPECTED, 'payment_intent');
    }
    const remaining = intent.amount_received - this.deps.store.refundedAmount(intent.id);
    if (remaining <= 0) throw new PspError(400, 'invalid_request_error', `The charge of PaymentIntent ${intent.id} has already been refunded.`, 'charge_already_refunded');
    const amount = readAmount(params, 'amount') ?? remaining;
    if (amount > remaining) {
      throw new PspError(400, 'invalid_request_error', `Refund amount (${amount}) is greater than unrefunded amount on charge (${remaining})`, 'amount_too_large', 'amount');
    }
    const refund: RefundObject = {
      id: newId('re'),
      object: 'refund',
      amount,
      currency: intent.currency,
      payment_intent: intent.id,
      status: 'succeeded',
      reason: readString(params, 'reason') ?? null,
      metadata: readMetadata(params),
      created: this.#seconds(),
    };
    return { status: 200, body: refund, ops: [{ op: 'refund', refund }, this.#event('charge.refunded', refund, ctx)] };
  }

  /** The hosted page's buttons: Pay (the decline-rate knob still applies: a buyer's card can fail) or Decline. */
  hostedAction(id: string, action: 'pay' | 'decline'): { ops: Op[]; outcome: 'succeeded' | 'declined' | 'unchanged' } {
    const intent = this.intent(id);
    if (intent.status !== 'requires_payment_method' && intent.status !== 'requires_confirmation') return { ops: [], outcome: 'unchanged' };
    const result = this.#confirm(intent, action === 'decline' ? 'pm_card_chargeDeclined' : null, { requestId: null, idempotencyKey: null });
    return { ops: result.ops, outcome: result.status === 200 ? 'succeeded' : 'declined' };
  }

  /** A new delivery of an existing event (like the dashboard's "Resend"). */
  resend(id: string): Op[] {
    this.eventById(id);
    return [{ op: 'resend', eventId: id }];
  }

  #confirm(intent: IntentObject, method: string | null, ctx: RequestContext): Result {
    if (intent.status === 'succeeded' || intent.status === 'canceled') {
      const why = intent.status === 'succeeded' ? 'it has already succeeded after being previously confirmed' : 'it has a status of canceled';
      throw new PspError(400, 'invalid_request_error', `You cannot confirm this PaymentIntent because ${why}.`, UNEXPECTED);
    }
    let decline: { decline_code: string; message: string } | undefined;
    if (method !== null) {
      decline = DECLINING_METHODS[method];
      if (!decline && !/^pm_[A-Za-z0-9_]+$/.test(method)) {
        throw new PspError(400, 'invalid_request_error', `No such PaymentMethod: '${method}'`, 'resource_missing', 'payment_method');
      }
    } else if (this.deps.random() < this.deps.knobs().declineRate) {
      decline = GENERIC_DECLINE;
    }
    if (decline) {
      const error: PaymentError = {
        type: 'card_error', code: 'card_declined', decline_code: decline.decline_code, message: decline.message,
        payment_method: { id: method ?? 'pm_card_sim', object: 'payment_method' },
      };
      const failed: IntentObject = { ...intent, status: 'requires_payment_method', payment_method: null, last_payment_error: error };
      return {
        status: 402,
        body: { error: { ...error, payment_intent: failed } },
        ops: [{ op: 'intent', intent: failed }, this.#event('payment_intent.payment_failed', failed, ctx)],
      };
    }
    const paid: IntentObject = { ...intent, status: 'succeeded', amount_received: intent.amount, payment_method: method ?? 'pm_card_visa', last_payment_error: null, next_action: null };
    return { status: 200, body: paid, ops: [{ op: 'intent', intent: paid }, this.#event('payment_intent.succeeded', paid, ctx)] };
  }

  /** An event, with its delivery plan decided now: dropped (0 copies), duplicated (2) or once (1). */
  #event(type: EventType, object: IntentObject | RefundObject, ctx: RequestContext): Op {
    const knobs = this.deps.knobs();
    const copies = this.deps.random() < knobs.webhookDropRate ? 0 : this.deps.random() < knobs.webhookDuplicateRate ? 2 : 1;
    const event: EventObject = {
      id: newId('evt'),
      object: 'event',
      api_version: API_VERSION,
      type,
      created: this.#seconds(),
      livemode: false,
      pending_webhooks: copies,
      request: { id: ctx.requestId, idempotency_key: ctx.idempotencyKey },
      data: { object: object },
    };
    return { op: 'event', event, copies };
  }

  #seconds(): number {
    return Math.floor(this.deps.now() / 1000);
  }
}
