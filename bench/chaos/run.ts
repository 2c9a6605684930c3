import { cpus } from 'node:os';
import { ChaosCluster } from './cluster.ts';
import { measure, settle, type ScenarioResult } from './measure.ts';
import { SCALES, SCENARIOS, type Scenario } from './scenarios.ts';
import type { Engines } from '../targets.ts';

export interface ChaosOptions {
  mode: 'short' | 'long';
  engines: Engines;
  /** Scenario names to run; all when empty. */
  only: readonly string[];
  /** How long a scenario may take to settle after its fault. */
  settleTimeoutMs: number;
  command: string;
  /** Leave a failed scenario's database, keys and queues in place (their names are printed). */
  keepFailed?: boolean;
}

export interface ChaosReport {
  machine: { cpus: number; node: string };
  mode: 'short' | 'long';
  command: string;
  startedAt: string;
  scale: (typeof SCALES)['short'];
  scenarios: ScenarioResult[];
}

/** A scenario's row when it could not run to the end: everything unknown, the error as the problem. */
function failedRow(scenario: Scenario, error: unknown): ScenarioResult {
  return {
    name: scenario.name, fault: scenario.fault, expected: scenario.expected,
    accepted: 0, paid: 0, expired: 0, cancelled: 0, refunded: 0, redelivered: 0, dead_lettered: 0, oversold: 0, lost: 0, doubled: 0, money_mismatches: 0, money: '',
    settle_ms: null, audit_ok: false, problems: [`did not complete: ${error instanceof Error ? error.message : String(error)}`], notes: {},
  };
}

async function runScenario(scenario: Scenario, options: ChaosOptions, say: (line: string) => void): Promise<ScenarioResult> {
  const scale = SCALES[options.mode];
  const cluster = await ChaosCluster.start({ engines: options.engines, ...scenario.cluster });
  let keep = false;
  try {
    const outcome = await scenario.run({ cluster, scale, say: (line) => say(`  ${scenario.name}: ${line}`) });
    const settleStarted = Date.now();
    const settled = await settle(cluster, outcome, options.settleTimeoutMs);
    say(`  ${scenario.name}: ${settled.ms === null ? `did not settle: ${settled.pending.join('; ')}` : 'settled'}`);
    const row = await measure(cluster, outcome, settled);
    // Settling is timed from the end of the fault, which may be before the runner started waiting.
    const settleMs = settled.ms === null ? null : settled.ms + Math.max(0, settleStarted - outcome.faultEndedAt);
    const result = { name: scenario.name, fault: scenario.fault, expected: scenario.expected, ...row, settle_ms: settleMs, problems: [...outcome.problems, ...row.problems], notes: outcome.notes };
    keep = options.keepFailed === true && !passed(result);
    if (keep) say(`  ${scenario.name}: kept for inspection: database, Redis prefix and RabbitMQ prefix ${cluster.namespace}`);
    return result;
  } finally {
    await cluster.stop(keep);
  }
}

/** Runs each scenario on a cluster of its own, one after the other (the faults must not meet). */
export async function runChaos(options: ChaosOptions, say: (line: string) => void): Promise<ChaosReport> {
  const unknown = options.only.filter((name) => !SCENARIOS.some((s) => s.name === name));
  if (unknown.length > 0) throw new Error(`unknown scenario(s) ${unknown.join(', ')}; choose from ${SCENARIOS.map((s) => s.name).join(', ')}`);
  const chosen = SCENARIOS.filter((s) => options.only.length === 0 || options.only.includes(s.name));
  const report: ChaosReport = {
    machine: { cpus: cpus().length, node: process.version }, mode: options.mode, command: options.command,
    startedAt: new Date().toISOString(), scale: SCALES[options.mode], scenarios: [],
  };
  for (const scenario of chosen) {
    say(`${scenario.name}: ${scenario.fault}`);
    const started = Date.now();
    const row = await runScenario(scenario, options, say).catch((error: unknown) => failedRow(scenario, error));
    say(`${scenario.name}: done in ${Math.round((Date.now() - started) / 1000)} s — lost ${row.lost}, doubled ${row.doubled}, oversold ${row.oversold}${row.problems.length ? `; ${row.problems.join('; ')}` : ''}`);
    report.scenarios.push(row);
  }
  return report;
}

/** A scenario passes when nothing was oversold, lost or doubled, the audit was clean and every check held. */
export function passed(row: ScenarioResult): boolean {
  return row.oversold === 0 && row.lost === 0 && row.doubled === 0 && row.money_mismatches === 0 && row.audit_ok && row.settle_ms !== null && row.problems.length === 0;
}
