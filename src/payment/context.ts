import type { Clock } from '../platform/clock.ts';
import type { Database, Queryable } from '../platform/database/index.ts';
import type { Emit } from '../platform/broker/outbox.ts';
import { AppError } from '../platform/errors.ts';
import type { PaymentGateway } from '../platform/payment-provider/port.ts';
import type { Logger } from '../platform/logger.ts';
import type { OrderRecords } from '../order/index.ts';
import type { CaptureRejection } from './contracts.ts';
import * as sql from './sql.ts';

export type PaymentStatus = 'pending' | 'succeeded' | 'failed' | 'canceled';

/** The dependencies every payment use case shares, built once by `createPayments`. */
export interface PaymentContext {
  db: Database;
  clock: Clock;
  gateway: PaymentGateway;
  /** Order's records: a buyer's order, what a capture must match, the lock a payment is recorded under. */
  orders: Pick<OrderRecords, 'getOrder' | 'paymentTerms' | 'lockPendingForPayment' | 'traceOf'>;
  emit: Emit;
  log: Logger;
  /** A capture was rejected (and will be refunded): the metric's hook. */
  onCaptureRejected?: (reason: CaptureRejection) => void;
}

export interface PaymentRow {
  id: string; order_id: string; user_id: string | null; provider_intent_id: string; amount: number; currency: string;
  status: PaymentStatus; last_error: string | null; hosted_url: string | null;
}

export async function paymentOfOrder(q: Queryable, orderId: string): Promise<PaymentRow | undefined> {
  return (await q.query<PaymentRow>(sql.paymentOfOrder, [orderId]))[0];
}

/** The provider could not be reached or timed out: the buyer (or the close check) retries. */
export function unavailable(error: unknown): AppError {
  return new AppError('payment_unavailable', undefined, { retryAfterS: 2, cause: error });
}
