/**
 * After a fault: wait until the system has settled, then count what the scenario report gives —
 * from the database, the simulator's records and the members' logs, never from what the clients
 * hoped. *Lost*: an accepted order, a payment or an event that never reached its terminal effect.
 * *Doubled*: an effect that happened twice (two captures, two releases, two notifications of one
 * kind for one order, two terminal transitions of one order).
 */
import { reconciliationSummary } from '../../src/payment/reconcile.ts';
import type { AuditBody, ChaosCluster } from './cluster.ts';
import type { PlacedOrder } from './traffic.ts';

/** One row of the report (snake_case: the shape of bench/results/chaos.json). */
export interface ScenarioResult {
  name: string;
  fault: string;
  expected: string;
  accepted: number;
  paid: number;
  expired: number;
  cancelled: number;
  refunded: number;
  redelivered: number;
  dead_lettered: number;
  oversold: number;
  lost: number;
  doubled: number;
  /** Differences between the database and the provider's intents, captures and refunds (the audit's reconciliation). */
  money_mismatches: number;
  /** The reconciliation's counts: captures, refunds, money received, refunded and paid, per currency. */
  money: string;
  /** From the end of the fault (or of the traffic) until everything above was final; null if it never was. */
  settle_ms: number | null;
  audit_ok: boolean;
  /** What was lost or doubled, and anything else the scenario checked that did not hold. */
  problems: string[];
  /** Scenario-specific figures (orders accepted during the outage, 503s while fenced, …). */
  notes: Record<string, number | string>;
}

export interface Expectations {
  /** Every order the clients were answered 201 for. */
  accepted: readonly PlacedOrder[];
  /** Orders whose Pay the simulator took. */
  paid: readonly PlacedOrder[];
}

interface Tally {
  lost: Array<[string, number]>;
  doubled: Array<[string, number]>;
}

const TERMINAL_EVENTS = ['order.paid', 'order.expired', 'order.cancelled'];

/** Intents the simulator captured, by the order id the API put in their metadata. */
async function capturesByOrder(cluster: ChaosCluster): Promise<Map<string, Set<string>>> {
  const response = await fetch(`${cluster.pspUrl}/_sim/events?type=payment_intent.succeeded`, { headers: { authorization: `Bearer ${cluster.env.PSP_API_KEY}` } });
  if (response.status !== 200) throw new Error(`the simulator answered ${response.status} for its events`);
  const body = (await response.json()) as { data: Array<{ event: { data: { object: { id: string; metadata?: Record<string, string> } } } }> };
  const byOrder = new Map<string, Set<string>>();
  for (const { event } of body.data) {
    const intent = event.data.object;
    const orderId = intent.metadata?.order_id;
    if (!orderId) continue;
    byOrder.set(orderId, (byOrder.get(orderId) ?? new Set()).add(intent.id));
  }
  return byOrder;
}

/** The notices each order should have by its state, and those it lacks (one row per missing notice). */
const missingNoticesSql = `with expected as (
    select o.id, o.user_id, 'order_placed' as kind from orders o
    union all select o.id, o.user_id, case o.status when 'PAID' then 'payment_received' when 'FULFILLED' then 'payment_received'
      when 'EXPIRED' then 'order_expired' when 'CANCELLED' then 'order_cancelled' end from orders o where o.status <> 'PENDING_PAYMENT'
    union all select r.order_id, o.user_id, 'refund_issued' from refunds r join orders o on o.id = r.order_id where r.status = 'succeeded'
  ), missing as (
    select e.* from expected e where not exists (select 1 from notifications n where n.user_id = e.user_id and n.kind = e.kind)
  )`;

/** Counts that both the settling and the measuring ask for. */
const count = {
  pendingOrders: (c: ChaosCluster) => c.count(`select count(*) as n from orders where status = 'PENDING_PAYMENT'`),
  /** Outbox rows unpublished and due by `within` from now (negative: overdue by that much). */
  unpublished: (c: ChaosCluster, within: string) => c.count(`select count(*) as n from outbox where published_at is null and deliver_after <= now() + $1::interval`, [within]),
  missingNotices: (c: ChaosCluster) => c.count(`${missingNoticesSql} select count(*) as n from missing`),
  acceptedMissing: (c: ChaosCluster, expect: Expectations) => c.count(
    `select count(*) as n from unnest($1::uuid[]) as a(id) where not exists (select 1 from orders o where o.id = a.id)`, [expect.accepted.map((o) => o.orderId)]),
  capturesNotApplied: (c: ChaosCluster, captured: Map<string, Set<string>>) => c.count(
    `select count(*) as n from unnest($1::uuid[]) as c(order_id)
      where not exists (select 1 from orders o where o.id = c.order_id and o.status in ('PAID', 'FULFILLED'))
        and not exists (select 1 from refunds r where r.order_id = c.order_id and r.status = 'succeeded')`, [[...captured.keys()]]),
};

/** Everything that is not final yet; empty once the system has settled. */
async function unsettled(cluster: ChaosCluster, expect: Expectations): Promise<string[]> {
  const captured = await capturesByOrder(cluster);
  const counts: Array<[string, number]> = [
    ['orders awaiting payment', await count.pendingOrders(cluster)],
    // Also the rows due in the next seconds (the second close check, window + grace): settled means nothing is about to happen.
    ['events not yet published', await count.unpublished(cluster, '10 seconds')],
    ['refunds pending', await cluster.count(`select count(*) as n from refunds where status = 'pending'`)],
    ['notifications not sent', await cluster.count(`select count(*) as n from notifications where status = 'pending'`)],
    ['orders without every notice', await count.missingNotices(cluster)],
    ['captures not applied', await count.capturesNotApplied(cluster, captured)],
    ['accepted orders not in the database', await count.acceptedMissing(cluster, expect)],
  ];
  return counts.filter(([, n]) => n > 0).map(([what, n]) => `${n} ${what}`);
}

/** Polls until nothing is pending (or `timeoutMs`); resolves with the time it took, or null. */
export async function settle(cluster: ChaosCluster, expect: Expectations, timeoutMs: number): Promise<{ ms: number | null; pending: string[] }> {
  const started = Date.now();
  let pending: string[] = [];
  for (;;) {
    pending = await unsettled(cluster, expect).catch((error: unknown) => [`could not read the state: ${String(error)}`]);
    if (pending.length === 0) {
      const audit = await cluster.audit(true).catch(() => undefined);
      if (audit?.ok) return { ms: Date.now() - started, pending };
      pending = audit ? audit.violations.map((v) => `audit: [${v.check}] ${v.message}`) : ['audit unreachable'];
    }
    if (Date.now() - started > timeoutMs) return { ms: null, pending };
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function countLost(cluster: ChaosCluster, expect: Expectations, captured: Map<string, Set<string>>, tally: Tally): Promise<void> {
  tally.lost.push(['accepted orders missing from the database', await count.acceptedMissing(cluster, expect)]);
  tally.lost.push(['orders stuck awaiting payment', await count.pendingOrders(cluster)]);
  tally.lost.push(['captured payments neither applied nor refunded', await count.capturesNotApplied(cluster, captured)]);
  tally.lost.push(['payments the simulator took but never captured', expect.paid.filter((o) => !captured.has(o.orderId)).length]);
  tally.lost.push(['events overdue and never published', await count.unpublished(cluster, '-5 seconds')]);
  tally.lost.push(['notices never sent', await count.missingNotices(cluster)]);
  tally.lost.push(['units still held by closed orders', await cluster.count(
    `select coalesce(sum(h.quantity), 0) as n from holds h join orders o on o.id = h.order_id where h.status = 'held' and o.status <> 'PENDING_PAYMENT'`)]);
  tally.lost.push(['holds without an order', await cluster.count(
    `select count(*) as n from holds h where h.kind = 'order' and (h.order_id is null or not exists (select 1 from orders o where o.id = h.order_id))`)]);
}

async function countDoubled(cluster: ChaosCluster, captured: Map<string, Set<string>>, tally: Tally): Promise<void> {
  const excess = (sql: string) => cluster.count(`select coalesce(sum(c - 1), 0) as n from (${sql}) as g`);
  // A paid order cancelled afterwards (an admin, or its sale cancelled: refunded) is one transition more, not a double.
  tally.doubled.push(['orders with two terminal transitions', await excess(
    `select count(*) - (case when bool_or(topic = 'order.paid') and count(*) filter (where topic = 'order.cancelled' and payload->>'reason' in ('admin_cancelled', 'sale_cancelled')) = 1 then 1 else 0 end) as c
       from outbox where topic = any('{${TERMINAL_EVENTS.join(',')}}') group by payload->>'orderId'
     having count(*) > 1`)]);
  tally.doubled.push(['holds released twice', await excess(`select count(*) as c from outbox where topic = 'stock.released' group by payload->>'holdId' having count(*) > 1`)]);
  tally.doubled.push(['holds sold twice', await excess(`select count(*) as c from outbox where topic = 'stock.sold' group by payload->>'holdId' having count(*) > 1`)]);
  tally.doubled.push(['payments recorded twice', await excess(`select count(*) as c from outbox where topic = 'payment.succeeded' group by payload->>'orderId' having count(*) > 1`)]);
  tally.doubled.push(['refunds issued twice', await excess(`select count(*) as c from outbox where topic = 'payment.refunded' group by payload->>'orderId' having count(*) > 1`)]);
  tally.doubled.push(['notices sent twice', await excess(`select count(*) as c from notifications group by user_id, kind, channel having count(*) > 1`)]);
  tally.doubled.push(['orders captured twice at the provider', [...captured.values()].reduce((sum, intents) => sum + intents.size - 1, 0)]);
}

/** Deliveries RabbitMQ handed out again (after a crash or a lost connection) plus failed attempts retried. */
function redeliveries(cluster: ChaosCluster): number {
  const logs = cluster.logs();
  const count = (msg: string) => logs.split('\n').filter((line) => line.includes(`"msg":"${msg}"`)).length;
  return count('redelivered message') + count('handler failed');
}

/** Every process logged through a whole fault: none of it may carry a secret or a token. */
function secretsInLogs(cluster: ChaosCluster): string[] {
  const logs = cluster.logs();
  const leaks: string[] = (['JWT_SECRET', 'PSP_API_KEY', 'PSP_WEBHOOK_SECRET'] as const).filter((key) => logs.includes(cluster.env[key]!));
  if (/eyJ[\w-]{8,}\.eyJ[\w-]{8,}\./.test(logs)) leaks.push('a bearer token');
  return leaks.map((what) => `the logs carry ${what}`);
}

/** The report row: counts by state, and every lost or doubled effect found. */
export async function measure(cluster: ChaosCluster, expect: Expectations, settled: { ms: number | null; pending: string[] }): Promise<Omit<ScenarioResult, 'name' | 'fault' | 'expected' | 'notes'>> {
  const tally: Tally = { lost: [], doubled: [] };
  const captured = await capturesByOrder(cluster);
  await countLost(cluster, expect, captured, tally);
  await countDoubled(cluster, captured, tally);
  const byStatus = new Map((await cluster.query<{ status: string; n: string }>('select status, count(*) as n from orders group by status')).map((r) => [r.status, Number(r.n)]));
  const audit = await cluster.audit(true);
  const lost = tally.lost.reduce((sum, [, n]) => sum + n, 0);
  const doubled = tally.doubled.reduce((sum, [, n]) => sum + n, 0);
  const problems = [
    ...tally.lost.filter(([, n]) => n > 0).map(([what, n]) => `lost: ${n} ${what}`),
    ...tally.doubled.filter(([, n]) => n > 0).map(([what, n]) => `doubled: ${n} ${what}`),
    ...(settled.ms === null ? [`never settled: ${settled.pending.join('; ')}`] : []),
    ...secretsInLogs(cluster),
    ...audit.violations.map((v) => `audit: [${v.check}] ${v.message}`),
  ];
  return {
    accepted: expect.accepted.length,
    paid: (byStatus.get('PAID') ?? 0) + (byStatus.get('FULFILLED') ?? 0),
    expired: byStatus.get('EXPIRED') ?? 0,
    cancelled: byStatus.get('CANCELLED') ?? 0,
    refunded: await cluster.count(`select (select count(*) from refunds where status = 'succeeded') + (select count(*) from rejected_captures where status = 'refunded') as n`),
    redelivered: redeliveries(cluster),
    dead_lettered: await cluster.count('select count(*) as n from dead_letters'),
    oversold: audit.oversoldUnits,
    lost, doubled,
    money_mismatches: audit.money.reconciliation.mismatches.length,
    money: moneySummary(audit),
    settle_ms: settled.ms,
    audit_ok: audit.ok,
    problems,
  };
}


function moneySummary(audit: AuditBody): string {
  const rejected = Object.entries(audit.money.rejectedCaptures).map(([reason, n]) => `${n.refunded + n.refundPending} ${reason}`);
  return `${reconciliationSummary(audit.money.reconciliation)}${rejected.length ? `; rejected captures: ${rejected.join(', ')}` : ''}`;
}
