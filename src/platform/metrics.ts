import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** The process roles that serve /metrics (the `role` label of `flashsale_process_info`). */
export type ProcessRole = 'all' | 'api' | 'worker' | 'psp' | 'command';

/**
 * Every metric the app exports, on one registry (no global default registry).
 *
 * Counters and histograms are incremented on the paths they count (a counter is a few adds). The
 * gauges read from the database or the broker (`flashsale_stock_units`, `flashsale_orders`, queue
 * depths…) are filled by a sampler at scrape time (see ops/sampler.ts), never per request.
 */
export function createMetrics(role: ProcessRole = 'command') {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'flashsale_' });
  const info = new Gauge({ name: 'flashsale_process_info', help: 'Always 1: which role this process runs', labelNames: ['role'] as const, registers: [registry] });
  info.set({ role }, 1);
  const oversoldGuardTrips = new Counter({
    name: 'flashsale_oversold_guard_trips_total',
    help: "Attempts the gate admitted and the database's double check refused, by reason: the gate was wrong, the database kept the sale from overselling",
    labelNames: ['reason'] as const, registers: [registry],
  });
  // At 0 from the start: the first trip of a process must show as an increase, not as a new series.
  for (const reason of ['sold_out', 'limit_exceeded', 'unknown_item']) oversoldGuardTrips.inc({ reason }, 0);
  return {
    registry,
    role,
    httpRequests: new Counter({ name: 'flashsale_http_requests_total', help: 'HTTP requests by route and status', labelNames: ['method', 'route', 'status'] as const, registers: [registry] }),
    httpDuration: new Histogram({
      name: 'flashsale_http_request_duration_seconds', help: 'HTTP latency by route', labelNames: ['method', 'route'] as const,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5], registers: [registry],
    }),
    purchaseAttempts: new Counter({ name: 'flashsale_purchase_attempts_total', help: 'Order and cart attempts by outcome', labelNames: ['kind', 'outcome'] as const, registers: [registry] }),
    gateDecisions: new Counter({
      name: 'flashsale_gate_decisions_total', help: 'Decisions of the stock gate: admitted, or the refusal reason (unavailable: the gate could not decide)',
      labelNames: ['outcome'] as const, registers: [registry],
    }),
    oversoldGuardTrips,
    holdsCreated: new Counter({ name: 'flashsale_holds_created_total', help: 'Units held', registers: [registry] }),
    groupCommitBatch: new Histogram({ name: 'flashsale_group_commit_batch_size', help: 'Attempts per group-commit transaction', buckets: [1, 2, 5, 10, 20, 50, 100, 200, 500], registers: [registry] }),
    outboxPending: new Gauge({ name: 'flashsale_outbox_pending', help: 'Outbox rows not yet relayed', registers: [registry] }),
    outboxLag: new Gauge({ name: 'flashsale_outbox_lag_seconds', help: 'Age of the oldest due outbox row not yet relayed', registers: [registry] }),
    deliveriesPending: new Gauge({ name: 'flashsale_deliveries_pending', help: 'Messages waiting for a consumer', registers: [registry] }),
    queueMessages: new Gauge({
      name: 'flashsale_queue_messages', help: "Messages waiting per consumer: queue=work (ready for a handler, its lag) or dead (dead-lettered, not yet recorded or replayed)",
      labelNames: ['consumer', 'queue'] as const, registers: [registry],
    }),
    messagesHandled: new Counter({ name: 'flashsale_messages_handled_total', help: 'Message handler runs by consumer and outcome (ok, retry, dead)', labelNames: ['consumer', 'outcome'] as const, registers: [registry] }),
    dbTransactions: new Gauge({ name: 'flashsale_db_transactions_committed', help: 'Database transactions this process committed since it started', registers: [registry] }),
    capturesRejected: new Counter({ name: 'flashsale_captures_rejected_total', help: 'Captures that paid nothing and are refunded in full, by reason', labelNames: ['reason'] as const, registers: [registry] }),
    reconciliationMismatches: new Gauge({ name: 'flashsale_reconciliation_mismatches', help: 'Mismatches between the database and the payment provider at the last reconciliation', registers: [registry] }),
    reconciliationUnsettled: new Gauge({ name: 'flashsale_reconciliation_unsettled', help: 'Differences in-flight work explains at the last reconciliation (a webhook not yet applied, a refund not yet made)', registers: [registry] }),
    reconciliationLastRun: new Gauge({ name: 'flashsale_reconciliation_last_run_timestamp_seconds', help: 'When the last reconciliation finished', registers: [registry] }),
    reconciliationRuns: new Counter({ name: 'flashsale_reconciliation_runs_total', help: 'Periodic reconciliations by outcome (ok, mismatch, failed)', labelNames: ['outcome'] as const, registers: [registry] }),
    deadLetters: new Gauge({ name: 'flashsale_dead_letters', help: 'Dead-lettered messages', registers: [registry] }),
    stockUnits: new Gauge({
      name: 'flashsale_stock_units', help: 'Units per sale item by state (available, held, sold, written_off) for sales open now, starting within the hour or ended within the hour: the burn-down',
      labelNames: ['sale_id', 'sale_item_id', 'state'] as const, registers: [registry],
    }),
    stockInitial: new Gauge({ name: 'flashsale_stock_initial_units', help: 'Units a sale item started with (same sales as flashsale_stock_units)', labelNames: ['sale_id', 'sale_item_id'] as const, registers: [registry] }),
    holdUnits: new Gauge({ name: 'flashsale_hold_units', help: 'Units over every sale item by hold state (available, held, sold, written_off)', labelNames: ['state'] as const, registers: [registry] }),
    orders: new Gauge({ name: 'flashsale_orders', help: 'Orders by status', labelNames: ['status'] as const, registers: [registry] }),
    payments: new Gauge({ name: 'flashsale_payments', help: 'Payments (one provider intent each) by status', labelNames: ['status'] as const, registers: [registry] }),
    refunds: new Gauge({ name: 'flashsale_refunds', help: 'Refunds by status', labelNames: ['status'] as const, registers: [registry] }),
    sampleErrors: new Counter({ name: 'flashsale_metrics_sample_errors_total', help: 'Scrape-time samples of the database or the broker that failed', labelNames: ['source'] as const, registers: [registry] }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
