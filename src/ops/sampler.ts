import type { System } from '../app.ts';

/** Sales this close to now (before their start or after their end) are in the burn-down. */
const BURN_DOWN_WINDOW_MS = 3_600_000;
/** Scrapes within this of the last sample share it (two Prometheus servers, a dashboard refresh). */
const SAMPLE_TTL_MS = 1000;

const ORDER_STATUSES = ['PENDING_PAYMENT', 'PAID', 'FULFILLED', 'CANCELLED', 'EXPIRED'];
const PAYMENT_STATUSES = ['pending', 'succeeded', 'failed', 'canceled'];
const REFUND_STATUSES = ['pending', 'succeeded'];

/**
 * Fills the gauges read from the database and the broker, at scrape time and at most once a second:
 * a few grouped counts over small tables or partial indexes, never per request. Every process
 * reports the shared ones (stock, orders, payments), so dashboards take `max` over instances. A
 * source that fails leaves its gauges as they were and counts `flashsale_metrics_sample_errors_total`.
 */
export function createSampler(system: System): { sample(): Promise<void> } {
  const { metrics } = system;
  let last: { at: number; done: Promise<void> } | undefined;

  const sources: Record<string, () => Promise<void>> = {
    broker: async () => {
      const stats = await system.broker.stats();
      metrics.outboxPending.set(stats.outboxPending);
      metrics.outboxLag.set(stats.outboxLagSeconds);
      metrics.deliveriesPending.set(stats.deliveriesPending);
      metrics.deadLetters.set(stats.deadLetters);
      metrics.queueMessages.reset();
      for (const q of stats.queues) {
        metrics.queueMessages.set({ consumer: q.consumer, queue: 'work' }, q.work);
        metrics.queueMessages.set({ consumer: q.consumer, queue: 'dead' }, q.dead);
      }
    },
    stock: async () => {
      const snapshot = await system.inventory.stockSnapshot(BURN_DOWN_WINDOW_MS);
      metrics.stockUnits.reset();
      metrics.stockInitial.reset();
      for (const item of snapshot.items) {
        const labels = { sale_id: item.saleId, sale_item_id: item.saleItemId };
        metrics.stockInitial.set(labels, item.initial);
        metrics.stockUnits.set({ ...labels, state: 'available' }, item.available);
        metrics.stockUnits.set({ ...labels, state: 'held' }, item.held);
        metrics.stockUnits.set({ ...labels, state: 'sold' }, item.sold);
        metrics.stockUnits.set({ ...labels, state: 'written_off' }, item.writtenOff);
      }
      const t = snapshot.totals;
      metrics.holdUnits.set({ state: 'available' }, t.available);
      metrics.holdUnits.set({ state: 'held' }, t.held);
      metrics.holdUnits.set({ state: 'sold' }, t.sold);
      metrics.holdUnits.set({ state: 'written_off' }, t.writtenOff);
    },
    orders: async () => setAll(metrics.orders, ORDER_STATUSES, await system.orders.countByStatus()),
    payments: async () => {
      const counts = await system.payments.countByStatus();
      setAll(metrics.payments, PAYMENT_STATUSES, counts.payments);
      setAll(metrics.refunds, REFUND_STATUSES, counts.refunds);
    },
  };

  async function run(): Promise<void> {
    metrics.dbTransactions.set(system.db.committedTransactions);
    await Promise.all(Object.entries(sources).map(([source, read]) => read().catch(() => metrics.sampleErrors.inc({ source }))));
  }

  return {
    sample() {
      const now = Date.now();
      if (!last || now - last.at >= SAMPLE_TTL_MS) last = { at: now, done: run() };
      return last.done;
    },
  };
}

/** Every known status gets a series (0 when none), so a panel or an alert never sees a gap. */
function setAll(gauge: { set(labels: { status: string }, value: number): void }, known: readonly string[], counts: Record<string, number>): void {
  for (const status of new Set([...known, ...Object.keys(counts)])) gauge.set({ status }, counts[status] ?? 0);
}
