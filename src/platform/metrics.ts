import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Every metric the app exports, on one registry (no global default registry). */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'flashsale_' });
  return {
    registry,
    httpRequests: new Counter({ name: 'flashsale_http_requests_total', help: 'HTTP requests by route and status', labelNames: ['method', 'route', 'status'] as const, registers: [registry] }),
    httpDuration: new Histogram({
      name: 'flashsale_http_request_duration_seconds', help: 'HTTP latency by route', labelNames: ['method', 'route'] as const,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5], registers: [registry],
    }),
    purchaseAttempts: new Counter({ name: 'flashsale_purchase_attempts_total', help: 'Order and cart attempts by outcome', labelNames: ['kind', 'outcome'] as const, registers: [registry] }),
    holdsCreated: new Counter({ name: 'flashsale_holds_created_total', help: 'Units held', registers: [registry] }),
    groupCommitBatch: new Histogram({ name: 'flashsale_group_commit_batch_size', help: 'Attempts per group-commit transaction', buckets: [1, 2, 5, 10, 20, 50, 100, 200, 500], registers: [registry] }),
    outboxPending: new Gauge({ name: 'flashsale_outbox_pending', help: 'Outbox rows not yet relayed', registers: [registry] }),
    outboxLag: new Gauge({ name: 'flashsale_outbox_lag_seconds', help: 'Age of the oldest due outbox row not yet relayed', registers: [registry] }),
    deliveriesPending: new Gauge({ name: 'flashsale_deliveries_pending', help: 'Messages waiting for a consumer', registers: [registry] }),
    dbTransactions: new Gauge({ name: 'flashsale_db_transactions_committed', help: 'Database transactions this process committed since it started', registers: [registry] }),
    capturesRejected: new Counter({ name: 'flashsale_captures_rejected_total', help: 'Captures that paid nothing and are refunded in full, by reason', labelNames: ['reason'] as const, registers: [registry] }),
    reconciliationMismatches: new Gauge({ name: 'flashsale_reconciliation_mismatches', help: 'Mismatches between the database and the payment provider at the last reconciliation', registers: [registry] }),
    reconciliationUnsettled: new Gauge({ name: 'flashsale_reconciliation_unsettled', help: 'Differences in-flight work explains at the last reconciliation (a webhook not yet applied, a refund not yet made)', registers: [registry] }),
    reconciliationLastRun: new Gauge({ name: 'flashsale_reconciliation_last_run_timestamp_seconds', help: 'When the last reconciliation finished', registers: [registry] }),
    deadLetters: new Gauge({ name: 'flashsale_dead_letters', help: 'Dead-lettered messages', registers: [registry] }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
