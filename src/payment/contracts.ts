import { Type, type Static } from '@sinclair/typebox';

/** Payment's events: producers type against these schemas, consumers check payloads with them (readPayload). */
export const PaymentTopics = {
  succeeded: 'payment.succeeded',
  failed: 'payment.failed',
  refunded: 'payment.refunded',
  /** A capture that cannot pay its order: recorded, then refunded in full by payment's own consumer. */
  captureRejected: 'payment.capture_rejected',
} as const;

/** `userId` is null for a payment recorded from the provider alone (no buyer known). */
const Buyer = Type.Union([Type.String(), Type.Null()]);

export const PaymentSucceeded = Type.Object({ paymentId: Type.String(), orderId: Type.String(), userId: Buyer, amount: Type.Integer(), currency: Type.String() });
export type PaymentSucceeded = Static<typeof PaymentSucceeded>;

export const PaymentFailed = Type.Object({ paymentId: Type.String(), orderId: Type.String(), userId: Buyer, reason: Type.String() });
export type PaymentFailed = Static<typeof PaymentFailed>;

export const PaymentRefunded = Type.Object({
  paymentId: Type.String(), orderId: Type.String(), userId: Buyer, refundId: Type.String(), amount: Type.Integer(), currency: Type.String(), reason: Type.String(),
});
export type PaymentRefunded = Static<typeof PaymentRefunded>;

/** Why a capture pays nothing: it must match its order exactly, and an order has one intent. */
export const CaptureRejection = Type.Union(['amount_mismatch', 'currency_mismatch', 'unknown_order', 'second_intent'].map((r) => Type.Literal(r)));
export type CaptureRejection = 'amount_mismatch' | 'currency_mismatch' | 'unknown_order' | 'second_intent';

export const CaptureRejected = Type.Object({
  providerIntentId: Type.String(), orderId: Type.String(), amount: Type.Integer({ minimum: 1 }), currency: Type.String(), reason: CaptureRejection,
});
export type CaptureRejected = Static<typeof CaptureRejected> & { reason: CaptureRejection };
