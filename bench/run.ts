import { randomUUID } from 'node:crypto';
import { SingleBar } from 'cli-progress';
import { uniformInt } from 'pure-rand/distribution/uniformInt';
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';
import { TokenService } from '../src/platform/tokens.ts';
import type { Baseline } from './baselines/baseline.ts';
import { BASELINES } from './baselines/index.ts';
import { runLoad, type PlannedAttempt } from './load.ts';
import { machine, targetChecks, type BenchReport } from './report.ts';
import { skippedRun, summarize, type ProcessFigures, type RunKind, type RunResult } from './summary.ts';
import { runLifecycle, type LifecycleTarget } from './lifecycle.ts';
import { RushWatch } from './rush.ts';
import { benchSecret, cpuMs, peakRssMb, reachableEngines, readProbe, resetProbe, startBaseline, startCeiling, startFlashsale, type Engine, type Engines, type EventLoopDelay, type ItemSpec, type RunningFlashsale, type RunningTarget } from './targets.ts';

export type Scenario = 'flash' | 'multi' | 'lifecycle' | 'rush';

export interface BenchOptions {
  scenario: Scenario;
  buyers: number;
  units: number;
  items: number;
  perUserLimit: number;
  connections: number;
  /** Only these runs (by name); all when empty. */
  only: readonly string[];
  engines: Engines;
  /** When set, every target process writes a V8 CPU profile here (`--cpu-prof`). */
  cpuProfileDir?: string;
  /** Draw a progress bar on stderr. */
  progress: boolean;
  /** Lifecycle scenario: the payment window of the sale, in seconds. */
  paymentWindowS: number;
  /** Requests for an unknown item sent before each run's clock starts (JIT, connections). */
  warmup: number;
  /** Seed of the plan (who buys what, in which order): the same seed, the same requests. */
  seed: number;
  command: string;
}

/** The issues' scales: full, and `--quick` (a fifth of the buyers and of the units). */
export const SCALES = {
  flash: { buyers: 10_000, units: 1_000, items: 1, perUserLimit: 1 },
  lifecycle: { buyers: 10_000, units: 1_000, items: 1, perUserLimit: 1 },
  multi: { buyers: 10_000, units: 1_000, items: 20, perUserLimit: 1 },
  /** Every buyer wants one unit and there is one for each: every attempt should succeed. */
  rush: { buyers: 20_000, units: 20_000, items: 1, perUserLimit: 1 },
} as const;

export const QUICK_SCALES: Record<Scenario, { buyers: number; units: number }> = {
  flash: { buyers: 2_000, units: 200 },
  lifecycle: { buyers: 2_000, units: 200 },
  multi: { buyers: 2_000, units: 200 },
  rush: { buyers: 4_000, units: 4_000 },
};

interface RunSpec {
  name: string;
  kind: RunKind;
  description: string;
  needs: readonly Engine[];
  start(items: readonly ItemSpec[]): Promise<RunningTarget>;
  /** Only flashsale has a payment lifecycle to measure after the flash. */
  lifecycle?: (target: RunningTarget) => LifecycleTarget;
}

/** A reproducible uniform integer in [from, to]: the same seed, the same plan. */
function random(seed: number): (from: number, to: number) => number {
  const rng = xoroshiro128plus(seed);
  return (from, to) => uniformInt(rng, from, to);
}

/** Units spread over items as evenly as whole numbers allow. */
export function itemSpecs(options: Pick<BenchOptions, 'units' | 'items' | 'perUserLimit'>): ItemSpec[] {
  return Array.from({ length: options.items }, (_, i) => ({
    stock: Math.floor(options.units / options.items) + (i < options.units % options.items ? 1 : 0),
    perUserLimit: options.perUserLimit,
  }));
}

/** Who tries to buy which item, in arrival order: buyer index and item index per attempt. */
export function plan(options: Pick<BenchOptions, 'scenario' | 'buyers' | 'items' | 'seed'>): Array<{ buyer: number; item: number }> {
  const next = random(options.seed);
  const attempts: Array<{ buyer: number; item: number }> = [];
  for (let buyer = 0; buyer < options.buyers; buyer++) {
    if (options.scenario !== 'multi') {
      attempts.push({ buyer, item: next(0, options.items - 1) });
      continue;
    }
    const wanted = new Set<number>();
    const count = Math.min(options.items, next(1, 3));
    while (wanted.size < count) wanted.add(next(0, options.items - 1));
    for (const item of wanted) attempts.push({ buyer, item });
  }
  for (let i = attempts.length - 1; i > 0; i--) {
    const j = next(0, i);
    [attempts[i], attempts[j]] = [attempts[j]!, attempts[i]!];
  }
  return attempts;
}

function lifecycleOf(target: RunningTarget): LifecycleTarget {
  const flashsale = target as RunningFlashsale;
  return { url: flashsale.url, itemIds: flashsale.itemIds, tokens: flashsale.tokens };
}

function runSpecs(options: BenchOptions, secret: string): RunSpec[] {
  const nodeArgs = options.cpuProfileDir ? ['--cpu-prof', `--cpu-prof-dir=${options.cpuProfileDir}`] : [];
  const baseline = (b: Baseline): RunSpec => ({
    name: b.name, kind: 'baseline', description: b.description, needs: b.needs,
    start: (items) => startBaseline(b, options.engines, items, secret, nodeArgs),
  });
  return [
    { name: 'ceiling', kind: 'ceiling', description: 'a bare Fastify route answering 409, doing nothing: this machine\'s HTTP path', needs: [], start: (items) => startCeiling(items, nodeArgs) },
    {
      name: 'flashsale-embedded', kind: 'flashsale', description: '`flashsale start` on its defaults: PGlite, in-process broker, in-memory gate', needs: [],
      start: (items) => startFlashsale({ mode: 'embedded', engines: options.engines, items, jwtSecret: secret, nodeArgs, paymentWindowS: options.paymentWindowS }),
      lifecycle: lifecycleOf,
    },
    {
      name: 'flashsale-distributed', kind: 'flashsale', description: '`flashsale api` and `flashsale worker` as separate processes (and `flashsale psp`) on PostgreSQL + Redis + RabbitMQ', needs: ['postgres', 'redis', 'rabbitmq'],
      start: (items) => startFlashsale({ mode: 'distributed', engines: options.engines, items, jwtSecret: secret, nodeArgs, paymentWindowS: options.paymentWindowS }),
      lifecycle: lifecycleOf,
    },
    ...BASELINES.map(baseline),
  ];
}

/** One run: start the target, drive the same attempts at it, collect its figures, stop it. */
async function measure(spec: RunSpec, options: BenchOptions, items: readonly ItemSpec[], attempts: ReadonlyArray<{ token: string; buyer: number; item: number }>): Promise<RunResult> {
  const target = await spec.start(items);
  let bar: SingleBar | undefined;
  let watch: RushWatch | undefined;
  // Interrupted: stop the target and remove its data, or its process and database outlive the bench.
  const onSignal = () => {
    bar?.stop();
    void Promise.resolve(watch?.stop()).then(() => target.abort()).finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const planned: PlannedAttempt[] = attempts.map((a) => ({ token: a.token, body: JSON.stringify({ items: [{ saleItemId: target.itemIds[a.item], quantity: 1 }] }) }));
    if (options.progress) {
      bar = new SingleBar({ format: `${spec.name.padEnd(22)} {bar} {value}/{total} answered | {accepted} accepted`, stream: process.stderr, hideCursor: true });
      bar.start(planned.length, 0, { accepted: 0 });
    }
    // Warm-up: the same route and tokens for an item that does not exist, so every target's code is
    // compiled and its connections open before the clock starts, and no stock is touched.
    const unknownItem = JSON.stringify({ items: [{ saleItemId: randomUUID(), quantity: 1 }] });
    await runLoad({ url: target.url, connections: options.connections, attempts: planned.slice(0, options.warmup).map((a) => ({ token: a.token, body: unknownItem })), maxRetries: 0 });
    await target.markStart();
    // The event-loop delay window of every process starts with the load.
    await Promise.all(target.processes.map((p) => resetProbe(p)));
    // The ceiling writes nothing: the rush's finish line is for targets that take orders.
    if (options.scenario === 'rush' && spec.kind !== 'ceiling') watch = new RushWatch(target);
    const progressBar = bar;
    const cpuBefore = await Promise.all(target.processes.map((p) => cpuMs(p.pid)));
    const startedAt = Date.now();
    const load = await runLoad({
      url: target.url, connections: options.connections, attempts: planned,
      ...(progressBar ? { onProgress: (done: number, accepted: number) => progressBar.update(done, { accepted }) } : {}),
    });
    const cpuAfter = await Promise.all(target.processes.map((p) => cpuMs(p.pid)));
    const eventLoop = await Promise.all(target.processes.map((p) => readProbe(p).catch((): EventLoopDelay | undefined => undefined)));
    bar?.stop();
    const rush = watch ? await watch.finish(load) : undefined;
    const accepted = load.records.filter((r) => r.status >= 200 && r.status < 300);
    const lifecycle = options.scenario === 'lifecycle' && spec.lifecycle && accepted.length > 0
      ? await runLifecycle(spec.lifecycle(target), { records: load.records, attempts: planned }, {
        windowS: options.paymentWindowS, connections: options.connections,
        firstOrderAt: startedAt + Math.min(...accepted.map((r) => r.endMs)),
      })
      : undefined;
    const processes = await Promise.all(target.processes.map(async (p, i): Promise<ProcessFigures> => ({
      name: p.name,
      peak_rss_mb: await peakRssMb(p.pid),
      event_loop_delay_p50_ms: eventLoop[i]?.p50_ms ?? null,
      event_loop_delay_p99_ms: eventLoop[i]?.p99_ms ?? null,
      event_loop_delay_max_ms: eventLoop[i]?.max_ms ?? null,
      ...cpuFigures(cpuBefore[i] ?? null, cpuAfter[i] ?? null, load.records.length),
    })));
    const facts = await target.finish();
    return {
      ...summarize({ name: spec.name, kind: spec.kind, description: spec.description }, load.records, load.durationMs, options.units, facts, { processes, ...(rush ? { rush } : {}) }),
      ...(lifecycle ? { lifecycle } : {}),
    };
  } catch (error) {
    bar?.stop();
    await watch?.stop();
    await target.abort().catch(() => {});
    throw error;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

function cpuFigures(before: number | null, after: number | null, exchanges: number): Pick<ProcessFigures, 'cpu_ms' | 'cpu_us_per_exchange'> {
  if (before === null || after === null) return { cpu_ms: null, cpu_us_per_exchange: null };
  const ms = after - before;
  return { cpu_ms: Math.round(ms), cpu_us_per_exchange: exchanges > 0 ? Math.round((1000 * ms) / exchanges) : null };
}

/**
 * Runs every run of the invocation one after another, each in its own server process, with the
 * same client, the same planned attempts (same tokens, same order) and the same connection count.
 */
export async function runBench(options: BenchOptions, log: (line: string) => void = () => {}): Promise<BenchReport> {
  const secret = benchSecret();
  const tokens = new TokenService(secret, 6 * 3600);
  // Minted before any run and outside every measurement: no password hashing per buyer.
  const buyerTokens = Array.from({ length: options.buyers }, () => tokens.issue({ userId: randomUUID(), role: 'buyer' }));
  const attempts = plan(options).map((a) => ({ ...a, token: buyerTokens[a.buyer]! }));
  const items = itemSpecs(options);
  const reachable = await reachableEngines(options.engines);
  const started = new Date().toISOString();
  const runs: RunResult[] = [];
  for (const spec of runSpecs(options, secret)) {
    if (options.only.length > 0 && !options.only.includes(spec.name)) continue;
    if (options.scenario === 'lifecycle' && !spec.lifecycle) {
      runs.push(skippedRun(spec, 'no payment lifecycle: the lifecycle scenario measures flashsale only'));
      continue;
    }
    const missing = spec.needs.filter((engine) => !reachable.has(engine));
    if (missing.length > 0) {
      log(`${spec.name}: skipped, ${missing.join(' and ')} not reachable`);
      runs.push(skippedRun(spec, `${missing.join(', ')} not reachable`));
      continue;
    }
    const result = await measure(spec, options, items, attempts);
    const rushLine = result.settled_orders_per_s === undefined ? '' : `, ${result.settled_orders_per_s ?? '–'} settled orders/s${result.quiet_clean_ms === undefined ? '' : `, quiet-clean after ${result.quiet_clean_ms ?? '–'} ms`}`;
    log(`${spec.name}: ${result.attempts_per_s} attempts/s, ${result.accepted} accepted, oversold ${result.oversold}${rushLine}, event-loop delay p99/max ${result.event_loop_delay_p99_ms ?? '–'}/${result.event_loop_delay_max_ms ?? '–'} ms, peak RSS ${result.peak_rss_mb ?? '–'} MB, CPU µs/exchange ${result.processes.map((p) => `${p.name} ${p.cpu_us_per_exchange ?? '–'}`).join(' ')}`);
    runs.push(result);
  }
  return {
    machine: machine(), command: options.command, started_at: started, scenario: options.scenario,
    buyers: options.buyers, units: options.units, items: options.items, per_user_limit: options.perUserLimit, connections: options.connections,
    runs, targets: targetChecks(runs, options.scenario),
  };
}
