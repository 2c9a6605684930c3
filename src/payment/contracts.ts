/** Payment's events. */
export const PaymentTopics = {
  succeeded: 'payment.succeeded',
  failed: 'payment.failed',
  refunded: 'payment.refunded',
} as const;

export interface PaymentSucceeded { paymentId: string; orderId: string; userId: string | null; amount: number; currency: string }
export interface PaymentFailed { paymentId: string; orderId: string; userId: string | null; reason: string }
export interface PaymentRefunded { paymentId: string; orderId: string; userId: string | null; refundId: string; amount: number; currency: string; reason: string }
