import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { TokenService } from '../src/platform/tokens.ts';
import { inParallel, post, splitWinners } from './buyers.ts';
import { runLoad, type AttemptRecord, type PlannedAttempt } from './load.ts';

/** What the lifecycle scenario measures after the flash (snake_case: part of the report file). */
export interface LifecycleResult {
  paid: number;
  cancelled: number;
  expired: number;
  /** Paid orders ÷ seconds from the first payment request to the last order seen PAID. */
  payments_per_s: number;
  /** Expired orders ÷ seconds from the payment deadline to the last hold seen released. */
  expiries_per_s: number;
  /** From the payment deadline to the late buyer who took the last released unit. */
  resold_ms: number | null;
  late_attempts: number;
  late_accepted: number;
}

interface StockTotals {
  initial: number;
  available: number;
  held: number;
  sold: number;
}

export interface LifecycleTarget {
  url: string;
  itemIds: readonly string[];
  tokens: TokenService;
}

const POLL_MS = 200;

/**
 * After the flash: 60% of the winners pay through the simulator's hosted page, 10% cancel, 30% let
 * the payment window pass; late buyers keep coming until every released unit is sold again.
 */
export async function runLifecycle(target: LifecycleTarget, flash: { records: readonly AttemptRecord[]; attempts: readonly PlannedAttempt[] }, opts: {
  windowS: number;
  /** Epoch ms when the first order of the flash was accepted: the first payment deadline is one window later. */
  firstOrderAt: number;
  connections: number;
}): Promise<LifecycleResult> {
  const stock = async (): Promise<StockTotals> => {
    // A fresh admin each time: polling is not what the per-user rate limit is there to stop.
    const admin = target.tokens.issue({ userId: randomUUID(), role: 'admin' });
    const response = await fetch(`${target.url}/v1/admin/audit`, { headers: { authorization: `Bearer ${admin}` } });
    const body = (await response.json()) as { stock?: StockTotals };
    if (!body.stock) throw new Error(`the audit answered ${response.status}: ${JSON.stringify(body)}`);
    return body.stock;
  };
  const winners = flash.records.filter((r) => r.status === 201 && r.id).map((r) => ({ orderId: r.id!, token: flash.attempts[r.attempt]!.token }));
  const { payers, cancellers } = splitWinners(winners);
  const expiring = winners.length - payers.length - cancellers.length;
  const firstDue = opts.firstOrderAt + opts.windowS * 1000;

  const payStarted = Date.now();
  const paying = inParallel(payers, 32, async ({ orderId, token }) => {
    const intent = await post(`${target.url}/v1/orders/${orderId}/payment`, token);
    if (intent.status >= 300) throw new Error(`payment of ${orderId} answered ${intent.status}: ${JSON.stringify(intent.json)}`);
    const hosted = await post(`${String(intent.json.hostedUrl)}/pay`);
    if (hosted.status >= 400) throw new Error(`the hosted page answered ${hosted.status}`);
  });
  const cancelling = inParallel(cancellers, 8, async ({ orderId, token }) => {
    const res = await post(`${target.url}/v1/orders/${orderId}/cancel`, token);
    if (res.status >= 300) throw new Error(`cancel of ${orderId} answered ${res.status}: ${JSON.stringify(res.json)}`);
  });

  // Late buyers arrive from now on, in waves, until the released units are all taken again.
  const late: AttemptRecord[] = [];
  let lateAttempts = 0;
  const releasedUnits = cancellers.length + expiring;
  let paidAt: number | undefined;
  let releasedAt: number | undefined;
  const started = Date.now();
  const giveUpAt = started + (opts.windowS + 120) * 1000;
  const body = JSON.stringify({ items: [{ saleItemId: target.itemIds[0], quantity: 1 }] });
  const wave = async () => {
    const attempts = Array.from({ length: Math.max(opts.connections, 64) }, () => ({ token: target.tokens.issue({ userId: randomUUID(), role: 'buyer' }), body }));
    const waveStart = Date.now() - started;
    const result = await runLoad({ url: target.url, connections: Math.min(opts.connections, 32), attempts, maxRetries: 3 });
    for (const r of result.records) late.push({ ...r, startMs: r.startMs + waveStart, endMs: r.endMs + waveStart });
    lateAttempts += attempts.length;
  };
  await Promise.all([paying, cancelling]);
  for (;;) {
    if (Date.now() > giveUpAt) throw new Error('late buyers did not take every released unit within the window + 120 s');
    const totals = await stock();
    if (paidAt === undefined && totals.sold >= payers.length) paidAt = Date.now();
    const lateAccepted = late.filter((r) => r.status === 201).length;
    // Units still held by the flash's own orders (late buyers hold the rest; nobody late pays).
    if (releasedAt === undefined && Date.now() >= firstDue && totals.held - lateAccepted <= 0) releasedAt = Date.now();
    if (paidAt !== undefined && lateAccepted >= releasedUnits && totals.available === 0) break;
    if (totals.available > 0) await wave();
    else await sleep(POLL_MS);
  }
  const lateAccepted = late.filter((r) => r.status === 201);
  const lastResold = lateAccepted.reduce((max, r) => Math.max(max, r.endMs), 0) + started;
  const round = (n: number) => Math.round(n * 10) / 10;
  return {
    paid: payers.length,
    cancelled: cancellers.length,
    expired: expiring,
    payments_per_s: paidAt === undefined ? 0 : round(payers.length / ((paidAt - payStarted) / 1000)),
    expiries_per_s: releasedAt === undefined || expiring === 0 ? 0 : round(expiring / Math.max(0.001, (releasedAt - firstDue) / 1000)),
    resold_ms: lateAccepted.length >= releasedUnits ? Math.round(lastResold - firstDue) : null,
    late_attempts: lateAttempts,
    late_accepted: lateAccepted.length,
  };
}
