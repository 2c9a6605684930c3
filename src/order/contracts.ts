/** Order's events. */
export const OrderTopics = {
  created: 'order.created',
  cancelled: 'order.cancelled',
  paid: 'order.paid',
  expired: 'order.expired',
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
