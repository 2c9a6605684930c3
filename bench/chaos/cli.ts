import { resolve } from 'node:path';
import { terminalRows, writeReport } from './report.ts';
import { passed, runChaos } from './run.ts';
import { enginesFrom } from '../targets.ts';

export interface ChaosFlags {
  short?: boolean;
  only?: string;
  keepFailed?: boolean;
  out: string;
  doc: string;
  postgres?: string;
  redis?: string;
  amqp?: string;
}


/** `flashsale chaos`: runs the scenarios, prints the table, writes the JSON and docs/reliability.md. */
export async function chaosCommand(flags: ChaosFlags, argv: readonly string[]): Promise<boolean> {
  const report = await runChaos({
    mode: flags.short ? 'short' : 'long',
    engines: enginesFrom(flags),
    only: flags.only ? flags.only.split(',').map((s) => s.trim()).filter(Boolean) : [],
    settleTimeoutMs: flags.short ? 90_000 : 240_000,
    keepFailed: flags.keepFailed === true,
    command: `flashsale ${argv.join(' ')}`,
  }, (line) => process.stderr.write(`${line}\n`));
  console.table(terminalRows(report));
  const json = resolve(flags.out, 'chaos.json');
  const doc = resolve(flags.doc);
  await writeReport(report, json, doc);
  process.stdout.write(`\nreports: ${json}, ${doc}\n`);
  return report.scenarios.every(passed);
}
