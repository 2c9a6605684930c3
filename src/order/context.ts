import type { Clock } from '../platform/clock.ts';
import type { Database, Tx } from '../platform/database/index.ts';
import type { Emit } from '../platform/broker/outbox.ts';
import type { IdempotencyStore } from '../platform/idempotency.ts';
import type { Logger } from '../platform/logger.ts';
import type { Catalog } from '../catalog/index.ts';
import type { Inventory } from '../inventory/index.ts';

/**
 * What order needs of the payment side before it closes an order, as a port order owns (payment
 * satisfies it): order never imports payment.
 */
export interface PaymentSettlement {
  /**
   * Was this order paid? Asks the provider (a webhook may be late or lost); 'unpaid' promises the
   * order can no longer be paid (its intent is cancelled).
   */
  settleBeforeClose(orderId: string): Promise<'paid' | 'unpaid'>;
  /** In the closing transaction: whether a payment is recorded and not settled (one started after settling looked). */
  hasOpenPayment(tx: Tx, orderId: string): Promise<boolean>;
}

/** The dependencies every order use case shares, built once by `createOrders`. */
export interface OrderContext {
  db: Database;
  clock: Clock;
  catalog: Catalog;
  inventory: Inventory;
  idempotency: IdempotencyStore;
  emit: Emit;
  payments: PaymentSettlement;
  /** Seconds after the payment window for the second close check. */
  graceS: number;
  log: Logger;
}
