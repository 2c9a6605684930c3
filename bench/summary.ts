import type { LifecycleResult } from './lifecycle.ts';
import type { AttemptRecord } from './load.ts';

export type RunKind = 'ceiling' | 'flashsale' | 'baseline';

/** One run's figures, as `bench/results/latest.json` carries them (snake_case: it is a file format). */
export interface RunResult {
  name: string;
  kind: RunKind;
  description: string;
  /** Set when the run could not happen (an engine unreachable): every figure is then 0. */
  skipped?: string;
  attempts: number;
  attempts_per_s: number;
  accepted: number;
  /** Final refusals by code (`sold_out`, `limit_exceeded`, …). */
  rejected: Record<string, number>;
  /** 429/503 answers, each retried after its Retry-After (load shedding, not failures). */
  shed: number;
  /** The sheds by error code (`overloaded`, `rate_limited`, `unavailable`, …). */
  shed_codes: Record<string, number>;
  /** 5xx answers other than a 503 shed. */
  errors_5xx: number;
  timeouts: number;
  p50_ms: number;
  p90_ms: number;
  p99_ms: number;
  max_ms: number;
  accepted_p50_ms: number;
  accepted_p99_ms: number;
  rejected_p50_ms: number;
  rejected_p99_ms: number;
  /** From the first request to the answer that took the last unit; null when stock was left. */
  sellout_ms: number | null;
  /** Units sold beyond stock, counted by the target's audit from its database. */
  oversold: number;
  /** Units the database says were sold (or held) at the end. */
  units_sold: number;
  db_tx_per_order: number | null;
  /** flashsale only: purchase commits and attempts per commit (group commit at work). */
  group_commit?: { batches: number; attempts_per_batch: number };
  /** Peak RSS of the process buyers talk to (VmHWM: since it started). */
  peak_rss_mb: number | null;
  /** Event-loop delay of the process buyers talk to, over the load (bench/probe.ts). */
  event_loop_delay_p50_ms: number | null;
  event_loop_delay_p99_ms: number | null;
  event_loop_delay_max_ms: number | null;
  /** Each process of the run (flashsale-distributed: the API, then the worker), with the same figures. */
  processes: ProcessFigures[];
  /** The target's audit after the run: flashsale's (quiet in the rush, else live); a baseline's finds nothing oversold. */
  audit_ok: boolean | null;
  /** What the audit found, when it was not clean. */
  audit_problems?: string[];
  /** Rush only: accepted orders ÷ (first request → every accepted order in the database). */
  settled_orders_per_s?: number | null;
  /** Rush only: first request → every accepted order in the database. */
  settled_ms?: number | null;
  /** Rush only: orders in the database when the run ended. */
  durable_orders?: number;
  /** Rush only, flashsale only: last answer → the audit quiet-clean (every event delivered, every notice sent); null if not within the wait. */
  quiet_clean_ms?: number | null;
  /** Rush only: sampled every 250 ms during and after the load; outbox and deliveries are null for targets without events. */
  backlog?: BacklogSample[];
  duration_ms: number;
  /** The lifecycle scenario's figures (flashsale runs only). */
  lifecycle?: LifecycleResult;
  /** Per 100 ms: attempts answered, and units left (units minus accepted so far, as the client saw it). */
  timeline: Array<{ t_ms: number; attempts: number; remaining: number }>;
}

export interface TargetFacts {
  oversold: number;
  unitsSold: number;
  dbTransactions: number | null;
  /** flashsale only: group-commit transactions and attempts per transaction, from its /metrics. */
  groupCommit?: { batches: number; attemptsPerBatch: number };
  auditOk: boolean;
  auditProblems: string[];
}

/** One process of a run, as the bench measured it. */
export interface ProcessFigures {
  /** `start`, `api`, `worker` or `serve`. */
  name: string;
  peak_rss_mb: number | null;
  event_loop_delay_p50_ms: number | null;
  event_loop_delay_p99_ms: number | null;
  event_loop_delay_max_ms: number | null;
  /** CPU time (all threads) from the first request to the last answer, in ms. */
  cpu_ms: number | null;
  /** cpu_ms per HTTP exchange answered, in µs. */
  cpu_us_per_exchange: number | null;
}

/** One sample of the rush: orders in the database and the event backlog, ms since the first request. */
export interface BacklogSample {
  t_ms: number;
  orders: number;
  outbox: number | null;
  deliveries: number | null;
}

/** What the rush measures besides the load itself (bench/rush.ts). */
export interface RushFigures {
  settled_orders_per_s: number | null;
  settled_ms: number | null;
  durable_orders: number;
  quiet_clean_ms: number | null;
  /** The quiet audit's last problems when it never came clean. */
  quiet_problems: string[];
  backlog: BacklogSample[];
}

const BUCKET_MS = 100;

/** Nearest-rank percentile of sorted values (0 for none). */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

const round = (n: number, digits = 2) => Math.round(n * 10 ** digits) / 10 ** digits;
const latencies = (records: readonly AttemptRecord[]) => records.map((r) => r.endMs - r.startMs).sort((a, b) => a - b);

export function summarize(
  run: { name: string; kind: RunKind; description: string },
  records: readonly AttemptRecord[],
  durationMs: number,
  units: number,
  facts: TargetFacts,
  measured: { processes: ProcessFigures[]; rush?: RushFigures },
): RunResult {
  const isAccepted = (r: AttemptRecord) => r.status >= 200 && r.status < 300;
  const accepted = records.filter(isAccepted);
  const refused = records.filter((r) => r.status >= 400 && r.status < 500 && !r.retried && r.status !== 429);
  const rejected = countCodes(refused);
  const all = latencies(records);
  const acceptedMs = latencies(accepted);
  const refusedMs = latencies(refused);
  const first = records.reduce((min, r) => Math.min(min, r.startMs), Infinity);
  const lastAccepted = accepted.reduce((max, r) => Math.max(max, r.endMs), 0);
  const server = measured.processes[0];
  const rush = measured.rush;
  // In the rush, the audit must also have come quiet-clean (flashsale: every event delivered, every notice sent).
  const quietMissed = rush !== undefined && run.kind === 'flashsale' && rush.quiet_clean_ms === null;
  const auditOk = facts.auditOk && !quietMissed;
  const auditProblems = [...facts.auditProblems, ...(quietMissed ? rush.quiet_problems.map((p) => `not quiet: ${p}`) : [])];
  return {
    ...run,
    attempts: records.length,
    attempts_per_s: durationMs > 0 ? Math.round(records.length / (durationMs / 1000)) : 0,
    accepted: accepted.length,
    rejected,
    shed: records.filter((r) => r.status === 429 || r.status === 503).length,
    shed_codes: countCodes(records.filter((r) => r.status === 429 || r.status === 503)),
    errors_5xx: records.filter((r) => r.status >= 500 && r.status !== 503).length,
    timeouts: records.filter((r) => r.status === 0).length,
    p50_ms: round(percentile(all, 50)),
    p90_ms: round(percentile(all, 90)),
    p99_ms: round(percentile(all, 99)),
    max_ms: round(all.at(-1) ?? 0),
    accepted_p50_ms: round(percentile(acceptedMs, 50)),
    accepted_p99_ms: round(percentile(acceptedMs, 99)),
    rejected_p50_ms: round(percentile(refusedMs, 50)),
    rejected_p99_ms: round(percentile(refusedMs, 99)),
    // Every attempt is for one unit; the audit's count can drift later (the lifecycle re-sells and expires).
    sellout_ms: accepted.length >= units ? Math.round(lastAccepted - first) : null,
    oversold: facts.oversold,
    units_sold: facts.unitsSold,
    db_tx_per_order: facts.dbTransactions === null || accepted.length === 0 ? null : round(facts.dbTransactions / accepted.length),
    peak_rss_mb: server?.peak_rss_mb ?? null,
    event_loop_delay_p50_ms: server?.event_loop_delay_p50_ms ?? null,
    event_loop_delay_p99_ms: server?.event_loop_delay_p99_ms ?? null,
    event_loop_delay_max_ms: server?.event_loop_delay_max_ms ?? null,
    processes: measured.processes,
    audit_ok: auditOk,
    ...(auditProblems.length > 0 ? { audit_problems: auditProblems } : {}),
    ...(rush ? {
      settled_orders_per_s: rush.settled_orders_per_s, settled_ms: rush.settled_ms, durable_orders: rush.durable_orders,
      ...(run.kind === 'flashsale' ? { quiet_clean_ms: rush.quiet_clean_ms } : {}),
      backlog: rush.backlog,
    } : {}),
    ...(facts.groupCommit ? { group_commit: { batches: facts.groupCommit.batches, attempts_per_batch: facts.groupCommit.attemptsPerBatch } } : {}),
    duration_ms: Math.round(durationMs),
    timeline: timeline(records, units),
  };
}

function countCodes(records: readonly AttemptRecord[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of records) counts[r.code ?? String(r.status)] = (counts[r.code ?? String(r.status)] ?? 0) + 1;
  return counts;
}

function timeline(records: readonly AttemptRecord[], units: number): RunResult['timeline'] {
  const buckets = new Map<number, { attempts: number; accepted: number }>();
  let lastBucket = 0;
  for (const r of records) {
    const b = Math.floor(r.endMs / BUCKET_MS);
    lastBucket = Math.max(lastBucket, b);
    const bucket = buckets.get(b) ?? { attempts: 0, accepted: 0 };
    bucket.attempts++;
    if (r.status >= 200 && r.status < 300) bucket.accepted++;
    buckets.set(b, bucket);
  }
  const points: RunResult['timeline'] = [];
  let remaining = units;
  for (let b = 0; b <= lastBucket && records.length > 0; b++) {
    const bucket = buckets.get(b) ?? { attempts: 0, accepted: 0 };
    remaining -= bucket.accepted;
    points.push({ t_ms: (b + 1) * BUCKET_MS, attempts: bucket.attempts, remaining: Math.max(0, remaining) });
  }
  return points;
}

/** A run that did not happen, with the reason, so the report says so instead of leaving it out. */
export function skippedRun(run: { name: string; kind: RunKind; description: string }, why: string): RunResult {
  return {
    ...run, skipped: why, attempts: 0, attempts_per_s: 0, accepted: 0, rejected: {}, shed: 0, shed_codes: {}, errors_5xx: 0, timeouts: 0,
    p50_ms: 0, p90_ms: 0, p99_ms: 0, max_ms: 0, accepted_p50_ms: 0, accepted_p99_ms: 0, rejected_p50_ms: 0, rejected_p99_ms: 0,
    sellout_ms: null, oversold: 0, units_sold: 0, db_tx_per_order: null, peak_rss_mb: null,
    event_loop_delay_p50_ms: null, event_loop_delay_p99_ms: null, event_loop_delay_max_ms: null, processes: [], audit_ok: null, duration_ms: 0, timeline: [],
  };
}
