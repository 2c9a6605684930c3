/**
 * What the buyers of a chaos scenario do: rush the sale, then pay, cancel or walk away. Every
 * answer is kept: the measurement compares what the clients were told with what the system did.
 */
import { randomUUID } from 'node:crypto';
import { runLoad, type AttemptRecord } from '../load.ts';
import { inParallel, payTaken, post, type Answer } from '../buyers.ts';
import type { ChaosCluster } from './cluster.ts';

export interface Buyer {
  userId: string;
  token: string;
}

export interface PlacedOrder extends Buyer {
  orderId: string;
}

export interface RushResult {
  /** Orders the clients were answered 201 for. */
  accepted: PlacedOrder[];
  /** Final answers by status (0: no answer — connection refused or reset, timeout). */
  statuses: Record<string, number>;
  /** Answers that said "retry after" (429, 503) and were retried, by status. */
  shed: Record<string, number>;
}

/** Buyers for the rush, each with its own identity and token. */
export function buyers(cluster: ChaosCluster, n: number): Buyer[] {
  return Array.from({ length: n }, () => {
    const userId = randomUUID();
    return { userId, token: cluster.buyerToken(userId) };
  });
}

export interface RushOptions {
  /** The buyers arrive in this many waves, so a fault can land between (and during) them. */
  waves?: number;
  /** Pause between waves. */
  gapMs?: number;
  /** Requests in flight per API. */
  connections?: number;
  /** Awaited after wave `i` (1-based) and before the next: where a scenario injects its fault. */
  afterWave?: (i: number) => Promise<void> | void;
}

/**
 * Every buyer tries once to order one unit of `itemId`, spread over the cluster's APIs; 429/503 are
 * retried as their Retry-After says (what a well-behaved client does).
 */
export async function rush(cluster: ChaosCluster, itemId: string, who: readonly Buyer[], opts: RushOptions = {}): Promise<RushResult> {
  const waves = opts.waves ?? 1;
  const body = JSON.stringify({ items: [{ saleItemId: itemId, quantity: 1 }] });
  const urls = cluster.apiUrls;
  const accepted: PlacedOrder[] = [];
  const statuses: Record<string, number> = {};
  const shed: Record<string, number> = {};
  const perWave = Math.ceil(who.length / waves);
  for (let w = 0; w < waves; w++) {
    const wave = who.slice(w * perWave, (w + 1) * perWave);
    const shares = urls.map((_, i) => wave.filter((_, j) => j % urls.length === i));
    const results = await Promise.all(urls.map((url, i) =>
      runLoad({ url, connections: opts.connections ?? 8, attempts: shares[i]!.map((b) => ({ token: b.token, body })), maxRetries: 20, timeoutMs: 15_000 })
        .then((r) => ({ share: shares[i]!, records: r.records }))));
    for (const { share, records } of results) {
      for (const record of records) if (record.retried) shed[record.status] = (shed[record.status] ?? 0) + 1;
      for (const record of finalAnswers(records)) {
        statuses[record.status] = (statuses[record.status] ?? 0) + 1;
        if (record.status === 201 && record.id) accepted.push({ ...share[record.attempt]!, orderId: record.id });
      }
    }
    await opts.afterWave?.(w + 1);
    if (w < waves - 1 && opts.gapMs) await new Promise((r) => setTimeout(r, opts.gapMs));
  }
  return { accepted, statuses, shed };
}

/** The last answer of each attempt (earlier ones were 429/503 and retried). */
function finalAnswers(records: readonly AttemptRecord[]): AttemptRecord[] {
  const last = new Map<number, AttemptRecord>();
  for (const r of records) if ((last.get(r.attempt)?.endMs ?? -1) <= r.endMs) last.set(r.attempt, r);
  return [...last.values()];
}

const NO_ANSWER: Answer = { status: 0, json: {} };

/** Counts an answer as `<what> <status> <error code>`, e.g. `cancel 503 unavailable`. */
function tallyAnswer(answers: Record<string, number>, what: string, answer: Answer): void {
  const error = answer.json.error as { code?: string } | undefined;
  const key = `${what} ${answer.status}${error?.code ? ` ${error.code}` : ''}`;
  answers[key] = (answers[key] ?? 0) + 1;
}

const TRANSIENT = new Set([0, 429, 502, 503, 504]);

/**
 * A buyer's POST to the API, retried as a client retries what says "try again" (no answer, 429,
 * 502–504), over the cluster's APIs in turn. Every answer is tallied; the last one is returned.
 */
async function callApi(cluster: ChaosCluster, what: string, path: string, token: string, answers: Record<string, number>): Promise<Answer> {
  let answer = NO_ANSWER;
  for (let attempt = 0; attempt < 10; attempt++) {
    const url = cluster.apiUrls[attempt % cluster.apiUrls.length]!;
    answer = await post(`${url}${path}`, token).catch(() => NO_ANSWER);
    tallyAnswer(answers, what, answer);
    if (!TRANSIENT.has(answer.status)) return answer;
    await new Promise((r) => setTimeout(r, 200 * (attempt + 1)));
  }
  return answer;
}

/**
 * Pays each order as a buyer does: asks the API for a payment, then presses Pay on the simulator's
 * hosted page. Returns the orders whose Pay the simulator took; an order the API refuses to take
 * payment for (already closed), or whose intent was voided before the Pay landed, is left out.
 */
export async function pay(cluster: ChaosCluster, orders: readonly PlacedOrder[], concurrency = 16, answers: Record<string, number> = {}): Promise<PlacedOrder[]> {
  const paid = await inParallel(orders, concurrency, async (order) => {
    const intent = await callApi(cluster, 'payment', `/v1/orders/${order.orderId}/payment`, order.token, answers);
    if (intent.status === 0 || intent.status >= 300) return undefined;
    const hosted = await post(`${String(intent.json.hostedUrl)}/pay`).catch(() => NO_ANSWER);
    return payTaken(hosted) ? order : undefined;
  });
  return paid.filter((o): o is PlacedOrder => o !== undefined);
}

/** Cancels each order as its buyer; returns those the API confirmed cancelled. */
export async function cancel(cluster: ChaosCluster, orders: readonly PlacedOrder[], concurrency = 8, answers: Record<string, number> = {}): Promise<PlacedOrder[]> {
  const done = await inParallel(orders, concurrency, async (order) => {
    const res = await callApi(cluster, 'cancel', `/v1/orders/${order.orderId}/cancel`, order.token, answers);
    return res.status > 0 && res.status < 300 ? order : undefined;
  });
  return done.filter((o): o is PlacedOrder => o !== undefined);
}
