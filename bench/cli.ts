import { resolve } from 'node:path';
import { writeReport, terminalRows } from './report.ts';
import { QUICK_SCALES, runBench, SCALES, type Scenario } from './run.ts';
import { enginesFrom } from './targets.ts';

export interface BenchFlags {
  scenario: string;
  quick?: boolean;
  buyers?: string;
  units?: string;
  items?: string;
  limit?: string;
  connections: string;
  window?: string;
  runs?: string;
  out: string;
  seed: string;
  progress: boolean;
  postgres?: string;
  redis?: string;
  amqp?: string;
  cpuProf?: string;
}


function positive(name: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`--${name} must be a positive whole number, got ${text}`);
  return n;
}

const isScenario = (name: string): name is Scenario => Object.hasOwn(SCALES, name);

/** `flashsale bench`: runs every run of one scenario, prints the table, writes the reports. */
export async function benchCommand(flags: BenchFlags, argv: readonly string[]): Promise<boolean> {
  if (!isScenario(flags.scenario)) throw new Error(`--scenario must be flash, multi, lifecycle or rush, got ${flags.scenario}`);
  const scenario: Scenario = flags.scenario;
  const scale = { ...SCALES[scenario], ...(flags.quick ? QUICK_SCALES[scenario] : {}) };
  const options = {
    scenario,
    buyers: positive('buyers', flags.buyers, scale.buyers),
    units: positive('units', flags.units, scale.units),
    items: positive('items', flags.items, scale.items),
    perUserLimit: positive('limit', flags.limit, scale.perUserLimit),
    connections: positive('connections', flags.connections, 128),
    only: flags.runs ? flags.runs.split(',').map((r) => r.trim()).filter(Boolean) : [],
    engines: enginesFrom(flags),
    ...(flags.cpuProf ? { cpuProfileDir: resolve(flags.cpuProf) } : {}),
    progress: flags.progress && process.stderr.isTTY === true,
    seed: positive('seed', flags.seed, 1),
    warmup: 2000,
    // The lifecycle scenario watches the window pass; every other scenario sells with the product's
    // default window (15 minutes), so no order expires while its run is measured.
    paymentWindowS: positive('window', flags.window, scenario === 'lifecycle' ? 20 : 900),
    command: `flashsale ${argv.join(' ')}`,
  };
  if (options.units < options.items) throw new Error('--units must be at least --items');
  const report = await runBench(options, (line) => process.stderr.write(`${line}\n`));
  console.table(terminalRows(report));
  for (const run of report.runs) if (run.lifecycle) process.stdout.write(`${run.name} lifecycle: ${JSON.stringify(run.lifecycle)}\n`);
  for (const t of report.targets) process.stdout.write(`${t.met === null ? '–' : t.met ? '✓' : '✗'} ${t.name}: ${t.value ?? '–'} (${t.bound})\n`);
  const files = await writeReport(report, resolve(flags.out));
  process.stdout.write(`\nreports: ${files.json}, ${files.markdown}, ${files.chart}\n`);
  // Oversold by a flashsale run is the one result that fails the command: it is a correctness bug.
  return report.runs.every((r) => r.kind !== 'flashsale' || r.oversold === 0);
}
