/** Order's events. */
export const OrderTopics = {
  created: 'order.created',
  cancelled: 'order.cancelled',
  paid: 'order.paid',
  expired: 'order.expired',
  /** A payment landed that must be given back (order closed, or cancelled by an admin). */
  refundRequested: 'order.refund_requested',
  /** Internal: the payment window of an order has elapsed (delayed message to itself). */
  deadline: 'order.deadline',
} as const;

export interface OrderCreated {
  orderId: string;
  userId: string;
  saleId: string;
  totalAmount: number;
  currency: string;
  expiresAt: string;
  items: Array<{ saleItemId: string; holdId: string; quantity: number; unitPrice: number }>;
}

export interface OrderCancelled { orderId: string; userId: string; reason: string }
export interface OrderPaid { orderId: string; userId: string; paymentId: string }
export interface OrderExpired { orderId: string; userId: string }
export interface OrderRefundRequested { orderId: string; userId: string; reason: 'order_closed' | 'admin_cancelled' }
export interface OrderDeadline { orderId: string; check: 'close' | 'recovery' }
