/** Payment's events. */
export const PaymentTopics = {
  succeeded: 'payment.succeeded',
  failed: 'payment.failed',
  refunded: 'payment.refunded',
  /** A capture that cannot pay its order: recorded, then refunded in full by payment's own consumer. */
  captureRejected: 'payment.capture_rejected',
} as const;

/** Why a capture pays nothing: it must match its order exactly, and an order has one intent. */
export type CaptureRejection = 'amount_mismatch' | 'currency_mismatch' | 'unknown_order' | 'second_intent';
export interface CaptureRejected { providerIntentId: string; orderId: string; amount: number; currency: string; reason: CaptureRejection }

export interface PaymentSucceeded { paymentId: string; orderId: string; userId: string | null; amount: number; currency: string }
export interface PaymentFailed { paymentId: string; orderId: string; userId: string | null; reason: string }
export interface PaymentRefunded { paymentId: string; orderId: string; userId: string | null; refundId: string; amount: number; currency: string; reason: string }
