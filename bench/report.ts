import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import type { BacklogSample, ProcessFigures, RunResult } from './summary.ts';

export interface BenchReport {
  machine: { cpus: number; cpu_model: string; memory_gb: number; node: string; platform: string };
  command: string;
  started_at: string;
  scenario: string;
  buyers: number;
  units: number;
  items: number;
  per_user_limit: number;
  connections: number;
  runs: RunResult[];
  /** Each issue target as measured in this run: ratios against runs of the same invocation. */
  targets: TargetCheck[];
}

export interface TargetCheck {
  name: string;
  value: number | null;
  /** Human-readable bound, e.g. ">= 0.5". */
  bound: string;
  met: boolean | null;
}

export function machine(): BenchReport['machine'] {
  return { cpus: cpus().length, cpu_model: cpus()[0]?.model ?? 'unknown', memory_gb: Math.round(totalmem() / 2 ** 30), node: process.version, platform: `${process.platform}-${process.arch}` };
}

const ratio = (a: number | null | undefined, b: number | null | undefined) => (a === null || a === undefined || b === null || b === undefined || b === 0 ? null : Math.round((a / b) * 100) / 100);
const check = (name: string, value: number | null, bound: string, ok: (v: number) => boolean): TargetCheck => ({ name, value, bound, met: value === null ? null : ok(value) });
/** A check of a flashsale figure: a figure the run could not produce (never settled, never quiet) fails it. */
const own = (name: string, figure: number | null | undefined, value: number | null, bound: string, ok: (v: number) => boolean): TargetCheck =>
  (figure === null || figure === undefined ? { name, value: null, bound, met: false } : check(name, value, bound, ok));
const atLeast = (n: number) => [`≥ ${n}`, (v: number) => v >= n] as const;
const atMost = (n: number) => [`≤ ${n}`, (v: number) => v <= n] as const;

/** Seed 001's cause 7: it oversells, so it is no yardstick for speed. */
const RACY_BASELINE = 'check-then-update';

/** flashsale's runs and the share of the ceiling's attempts/s each must reach in flash and multi. */
const FLASHSALE_RUNS = [['flashsale-embedded', 0.5], ['flashsale-distributed', 0.4]] as const;

/**
 * Issue #14's targets, as ratios between runs of the same invocation (absolute numbers on a shared
 * 2-core machine are noise). The correct baselines are every baseline but check-then-update.
 */
export function targetChecks(runs: readonly RunResult[], scenario: string): TargetCheck[] {
  const live = runs.filter((r) => !r.skipped);
  const byName = new Map(live.map((r) => [r.name, r]));
  const ceiling = byName.get('ceiling');
  const baselines = live.filter((r) => r.kind === 'baseline' && r.name !== RACY_BASELINE);
  const checks: TargetCheck[] = [];
  for (const [name, share] of FLASHSALE_RUNS) {
    const run = byName.get(name);
    if (!run) continue;
    if (scenario === 'rush') {
      const settled = run.settled_orders_per_s;
      for (const b of baselines) {
        // batched is the seeds' best durable approach: the bar against it is lower.
        const [bound, ok] = atLeast(b.name === 'batched' ? 1.1 : 1.5);
        checks.push(own(`${name} settled orders/s ÷ ${b.name}'s`, settled, ratio(settled, b.settled_orders_per_s), bound, ok));
      }
      checks.push(own(`${name} settled orders/s ÷ ceiling attempts/s`, settled, ratio(settled, ceiling?.attempts_per_s), ...atLeast(0.3)));
      checks.push(own(`${name} ms from the last answer to the audit quiet-clean`, run.quiet_clean_ms, run.quiet_clean_ms ?? null, ...atMost(15_000)));
    } else {
      checks.push(check(`${name} attempts/s ÷ ceiling`, ratio(run.attempts_per_s, ceiling?.attempts_per_s), ...atLeast(share)));
      for (const b of baselines) checks.push(check(`${name} attempts/s ÷ ${b.name}`, ratio(run.attempts_per_s, b.attempts_per_s), ...atLeast(1.2)));
    }
    checks.push(
      check(`${name} p99 (accepted and refused) ÷ ceiling p99`, ratio(run.p99_ms, ceiling?.p99_ms), ...atMost(3)),
      own(`${name} server event-loop delay max (ms)`, run.event_loop_delay_max_ms, run.event_loop_delay_max_ms, ...atMost(100)),
    );
    if (name === 'flashsale-embedded' && (scenario === 'flash' || scenario === 'rush')) checks.push(own(`${name} peak RSS (MB)`, run.peak_rss_mb, run.peak_rss_mb, ...atMost(400)));
    checks.push(
      check(`${name} oversold units`, run.oversold, '= 0', (v) => v === 0),
      check(`${name} 5xx (not counting 503 sheds) + timeouts`, run.errors_5xx + run.timeouts, '= 0', (v) => v === 0),
      check(`${name} audit violations${run.audit_problems ? ` (${run.audit_problems.slice(0, 2).map((p) => p.slice(0, 120)).join('; ')})` : ''}`,
        run.audit_ok === null ? null : run.audit_ok ? 0 : Math.max(1, run.audit_problems?.length ?? 0), '= 0', (v) => v === 0),
    );
  }
  return checks;
}

const fmt = (n: number | null | undefined, digits = 0) => (n === null || n === undefined ? '–' : n.toLocaleString('en-US', { maximumFractionDigits: digits }));
const mark = (met: boolean | null) => (met === null ? '–' : met ? '✓' : '✗');
const refusals = (r: RunResult) => Object.entries(r.rejected).map(([code, n]) => `${code} ${fmt(n)}`).join(', ') || '–';

/** A figure of each process, `·` between them (flashsale-distributed: the API's, then the worker's). */
const perProcess = (r: RunResult, figure: (p: ProcessFigures) => string) => r.processes.map(figure).join(' · ') || '–';
const loopDelay = (p: ProcessFigures) => `${fmt(p.event_loop_delay_p99_ms, 1)}/${fmt(p.event_loop_delay_max_ms, 1)}`;
const auditMark = (r: RunResult) => (r.audit_ok === null ? '–' : r.audit_ok ? '✓' : '✗');

/** Rows for the terminal. */
export function terminalRows(report: BenchReport): Array<Record<string, string>> {
  const ceiling = report.runs.find((r) => r.name === 'ceiling' && !r.skipped);
  const rush = report.scenario === 'rush';
  return report.runs.map((r): Record<string, string> => (r.skipped ? { run: r.name, skipped: r.skipped } : {
    run: r.name,
    'attempts/s': fmt(r.attempts_per_s),
    '× ceiling': fmt(ratio(r.attempts_per_s, ceiling?.attempts_per_s), 2),
    ...(rush ? { 'settled orders/s': fmt(r.settled_orders_per_s), 'quiet-clean ms': fmt(r.quiet_clean_ms) } : {}),
    accepted: fmt(r.accepted),
    oversold: fmt(r.oversold),
    'p99 ms': fmt(r.p99_ms, 1),
    'sellout ms': fmt(r.sellout_ms),
    shed: fmt(r.shed),
    '5xx/timeouts': `${r.errors_5xx}/${r.timeouts}`,
    'tx/order': fmt(r.db_tx_per_order, 2),
    'loop delay p99/max ms': perProcess(r, loopDelay),
    'RSS MB': perProcess(r, (p) => fmt(p.peak_rss_mb)),
    'CPU µs/exch': perProcess(r, (p) => fmt(p.cpu_us_per_exchange)),
    audit: auditMark(r),
  }));
}

export function markdown(report: BenchReport, chartFile: string): string {
  const ceiling = report.runs.find((r) => r.name === 'ceiling' && !r.skipped);
  const m = report.machine;
  const lines = [
    `# flashsale bench — ${report.scenario}`,
    '',
    `${fmt(report.buyers)} buyers, ${fmt(report.units)} units over ${report.items} item(s), limit ${report.per_user_limit} per buyer, ${report.connections} connections.`,
    `Machine: ${m.cpus} × ${m.cpu_model}, ${m.memory_gb} GiB, Node ${m.node} (${m.platform}). Started ${report.started_at}.`,
    '',
    `Command: \`${report.command}\``,
    '',
    '| run | kind | attempts/s | × ceiling | accepted | refused | shed (429/503) | 5xx | timeouts | p50 ms | p99 ms | accepted p99 | refused p99 | sell-out ms | oversold | DB tx / order | peak RSS MB | loop delay p99 ms | loop delay max ms | audit |',
    '|---|---|--:|--:|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|:-:|',
    ...report.runs.map((r) => (r.skipped
      ? `| ${r.name} | ${r.kind} | skipped: ${r.skipped} ||||||||||||||||||`
      : `| ${r.name} | ${r.kind} | ${fmt(r.attempts_per_s)} | ${fmt(ratio(r.attempts_per_s, ceiling?.attempts_per_s), 2)} | ${fmt(r.accepted)} | ${refusals(r)} | ${fmt(r.shed)} | ${r.errors_5xx} | ${r.timeouts} | ${fmt(r.p50_ms, 1)} | ${fmt(r.p99_ms, 1)} | ${fmt(r.accepted_p99_ms, 1)} | ${fmt(r.rejected_p99_ms, 1)} | ${fmt(r.sellout_ms)} | **${r.oversold}** | ${fmt(r.db_tx_per_order, 2)} | ${fmt(r.peak_rss_mb)} | ${fmt(r.event_loop_delay_p99_ms, 1)} | ${fmt(r.event_loop_delay_max_ms, 1)} | ${auditMark(r)} |`)),
    '',
    ...rushTable(report.runs),
    ...processTable(report.runs),
    ...lifecycleTable(report.runs),
    '| target | measured | bound | met |',
    '|---|--:|---|:-:|',
    ...report.targets.map((t) => `| ${t.name} | ${fmt(t.value, 2)} | ${t.bound} | ${mark(t.met)} |`),
    '',
    `![attempts per second and stock left over time](${chartFile})`,
    '',
    'What the runs are:',
    '',
    ...report.runs.map((r) => `- **${r.name}** — ${r.description}`),
    '',
  ];
  return lines.join('\n');
}

/** The rush's figures: the finish line, the quiet audit and the event backlog. */
function rushTable(runs: readonly RunResult[]): string[] {
  const rush = runs.filter((r) => !r.skipped && r.backlog);
  if (rush.length === 0) return [];
  const batched = runs.find((r) => r.name === 'batched' && !r.skipped);
  const events = (b: BacklogSample | undefined) => (b === undefined || b.outbox === null ? '–' : `${fmt(b.outbox)} / ${fmt(b.deliveries)}`);
  return [
    '| run | accepted | settled orders/s | × batched | first request → every accepted order in the DB (ms) | last answer → audit quiet-clean (ms) | backlog at the last answer (outbox / deliveries) | peak backlog (outbox / deliveries) | orders in the DB |',
    '|---|--:|--:|--:|--:|--:|--:|--:|--:|',
    ...rush.map((r) => {
      const backlog = r.backlog!;
      const atLastAnswer = backlog.find((b) => b.t_ms >= r.duration_ms) ?? backlog.at(-1);
      const peak = backlog.reduce<BacklogSample | undefined>((top, b) => (b.outbox !== null && (!top || b.outbox + (b.deliveries ?? 0) > top.outbox! + (top.deliveries ?? 0)) ? b : top), undefined);
      return `| ${r.name} | ${fmt(r.accepted)} | ${fmt(r.settled_orders_per_s)} | ${fmt(ratio(r.settled_orders_per_s, batched?.settled_orders_per_s), 2)} | ${fmt(r.settled_ms)} | ${fmt(r.quiet_clean_ms)} | ${events(atLastAnswer)} | ${events(peak)} | ${fmt(r.durable_orders)} |`;
    }),
    '',
  ];
}

/** Runs of more than one process: each process's figures. */
function processTable(runs: readonly RunResult[]): string[] {
  const split = runs.filter((r) => r.processes.length > 1);
  if (split.length === 0) return [];
  return [
    '| run | process | peak RSS MB | loop delay p50 ms | loop delay p99 ms | loop delay max ms |',
    '|---|---|--:|--:|--:|--:|',
    ...split.flatMap((r) => r.processes.map((p) => `| ${r.name} | ${p.name} | ${fmt(p.peak_rss_mb)} | ${fmt(p.event_loop_delay_p50_ms, 1)} | ${fmt(p.event_loop_delay_p99_ms, 1)} | ${fmt(p.event_loop_delay_max_ms, 1)} |`)),
    '',
  ];
}

function lifecycleTable(runs: readonly RunResult[]): string[] {
  const withLifecycle = runs.filter((r) => r.lifecycle);
  if (withLifecycle.length === 0) return [];
  return [
    '| run | paid | cancelled | expired | payments/s | expiries/s | deadline → last released unit re-sold (ms) | late buyers (accepted) |',
    '|---|--:|--:|--:|--:|--:|--:|--:|',
    ...withLifecycle.map(({ name, lifecycle: l }) => `| ${name} | ${l!.paid} | ${l!.cancelled} | ${l!.expired} | ${fmt(l!.payments_per_s, 1)} | ${fmt(l!.expiries_per_s, 1)} | ${fmt(l!.resold_ms)} | ${fmt(l!.late_attempts)} (${fmt(l!.late_accepted)}) |`),
    '',
  ];
}

/** The rush's samples: orders in the database, and flashsale's events waiting (outbox + deliveries). */
function backlogCharts(report: BenchReport) {
  const samples = report.runs.flatMap((r) => (r.backlog ?? []).map((b) => ({ run: r.name, seconds: b.t_ms / 1000, orders: b.orders, events: b.outbox === null ? null : b.outbox + (b.deliveries ?? 0) })));
  if (samples.length === 0) return [];
  const x = { field: 'seconds', type: 'quantitative', title: 'seconds since the first request' } as const;
  const color = { field: 'run', type: 'nominal' } as const;
  return [
    { data: { values: samples }, width: 720, height: 220, mark: { type: 'line', point: true }, encoding: { x, color, y: { field: 'orders', type: 'quantitative', title: 'orders in the database' } } },
    {
      data: { values: samples.filter((v) => v.events !== null) }, width: 720, height: 220, mark: { type: 'line', point: true },
      encoding: { x, color, y: { field: 'events', type: 'quantitative', title: 'events waiting (outbox + deliveries)' } },
    },
  ] as const;
}

/** Attempts/s and stock left over time, one line per run, as an SVG (Vega-Lite, rendered headless). */
export async function chartSvg(report: BenchReport): Promise<string> {
  const values = report.runs.flatMap((r) => r.timeline.map((p) => ({ run: r.name, seconds: p.t_ms / 1000, attempts_per_s: p.attempts * 10, remaining: p.remaining })));
  const base = { data: { values }, width: 720, height: 220 } as const;
  const spec: TopLevelSpec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: `flashsale bench — ${report.scenario}: ${report.buyers} buyers, ${report.units} units`,
    vconcat: [
      { ...base, mark: { type: 'line', interpolate: 'step-after' }, encoding: {
        x: { field: 'seconds', type: 'quantitative', title: 'seconds since the first request' },
        y: { field: 'attempts_per_s', type: 'quantitative', title: 'attempts answered / s' },
        color: { field: 'run', type: 'nominal' },
      } },
      { ...base, mark: { type: 'line', interpolate: 'step-after' }, encoding: {
        x: { field: 'seconds', type: 'quantitative', title: 'seconds since the first request' },
        y: { field: 'remaining', type: 'quantitative', title: 'units left (as clients saw it)' },
        color: { field: 'run', type: 'nominal' },
      } },
      ...backlogCharts(report),
    ],
  };
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  return svg;
}

/** Writes `latest.json`, `latest.md` and `latest.svg` (and a copy of each named by scenario). */
export async function writeReport(report: BenchReport, dir: string): Promise<{ json: string; markdown: string; chart: string }> {
  await mkdir(dir, { recursive: true });
  const files = { json: join(dir, 'latest.json'), markdown: join(dir, 'latest.md'), chart: join(dir, 'latest.svg') };
  const svg = await chartSvg(report);
  const json = `${JSON.stringify(report, null, 2)}\n`;
  await writeFile(files.json, json);
  await writeFile(files.chart, svg);
  await writeFile(files.markdown, markdown(report, 'latest.svg'));
  await writeFile(join(dir, `${report.scenario}.json`), json);
  await writeFile(join(dir, `${report.scenario}.svg`), svg);
  await writeFile(join(dir, `${report.scenario}.md`), markdown(report, `${report.scenario}.svg`));
  return files;
}
