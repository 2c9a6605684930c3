import type { System } from '../app.ts';

/** Sales this close to now (before their start or after their end) are in the burn-down. */
const BURN_DOWN_WINDOW_MS = 3_600_000;
/**
 * How fresh each source must be. The broker's backlog is asked at most every 250 ms (its counts scan
 * the outbox: ~25 ms of PGlite's one thread after a rush; the bench polls it to see a drain end).
 * The rest (grouped counts of orders and payments, the stock rows) is read at most every 5 s, in the
 * background once a first value exists: a scrape never waits for it again.
 */
const BROKER_TTL_MS = 250;
const SLOW_TTL_MS = 5000;

const ORDER_STATUSES = ['PENDING_PAYMENT', 'PAID', 'FULFILLED', 'CANCELLED', 'EXPIRED'];
const PAYMENT_STATUSES = ['pending', 'succeeded', 'failed', 'canceled'];
const REFUND_STATUSES = ['pending', 'succeeded'];

/**
 * Fills the gauges read from the database and the broker, at scrape time and no more often than the
 * TTLs above: a few grouped counts over small tables or partial indexes, never per request. Every process
 * reports the shared ones (stock, orders, payments), so dashboards take `max` over instances. A
 * source that fails leaves its gauges as they were and counts `flashsale_metrics_sample_errors_total`.
 */
export function createSampler(system: System): { sample(): Promise<void> } {
  const { metrics } = system;

  const broker = {
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
  };
  const slow = {
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

  const read = (sources: Record<string, () => Promise<void>>) => async () => {
    await Promise.all(Object.entries(sources).map(([source, run]) => run().catch(() => metrics.sampleErrors.inc({ source }))));
  };
  const brokerSample = sampledEvery(BROKER_TTL_MS, read(broker));
  const slowSample = sampledEvery(SLOW_TTL_MS, read(slow));
  let slowRead = false;

  return {
    async sample() {
      metrics.dbTransactions.set(system.db.committedTransactions);
      const slowDone = slowSample();
      await brokerSample();
      if (!slowRead) {
        await slowDone;
        slowRead = true;
      }
    },
  };
}

/** `run`'s latest call while it is younger than `ms`; callers in between share it (it never rejects). */
function sampledEvery(ms: number, run: () => Promise<void>): () => Promise<void> {
  let latest: { at: number; done: Promise<void> } | undefined;
  return () => {
    const now = performance.now();
    if (!latest || now - latest.at >= ms) latest = { at: now, done: run() };
    return latest.done;
  };
}

/** Every known status gets a series (0 when none), so a panel or an alert never sees a gap. */
function setAll(gauge: { set(labels: { status: string }, value: number): void }, known: readonly string[], counts: Record<string, number>): void {
  for (const status of new Set([...known, ...Object.keys(counts)])) gauge.set({ status }, counts[status] ?? 0);
}
