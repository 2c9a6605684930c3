import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { after, describe, it } from 'node:test';

/**
 * The layout rules themselves are dependency-cruiser's (.dependency-cruiser.cjs, run over src, bench
 * and test by `npm run lint:deps` before the suites). Here: proof that each rule fires on a file
 * that breaks it and stays quiet on what is allowed, and the one rule an import graph cannot
 * express — business code reads the time from the injected clock.
 */
const ROOT = resolve(import.meta.dirname, '..');
const require = createRequire(import.meta.url);
const config = require(join(ROOT, '.dependency-cruiser.cjs')) as { forbidden: Array<{ name: string; from: { path?: string } }> };
const COMPONENT = new RegExp(config.forbidden.find((r) => r.name === 'component-through-public-interface')!.from.path!);
/** The command `npm run lint:deps` runs. */
const DEPCRUISE = join(ROOT, 'node_modules', '.bin', 'depcruise');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return name.endsWith('.ts') && !name.endsWith('.test.ts') && name !== 'conformance.ts' ? [path] : [];
  });
}

/** A tree of small files, each breaking one rule or doing something the rules allow. */
const FIXTURE: Record<string, string> = {
  'package.json': JSON.stringify({ name: 'fixture', type: 'module', dependencies: { pino: '*' }, devDependencies: { 'fast-check': '*' } }),
  'tsconfig.json': readFileSync(join(ROOT, 'tsconfig.json'), 'utf8'),
  'bench/load.ts': 'export const run = 1;\nexport type Plan = number;\n',
  'test/support/helper.ts': 'export const helper = 1;\n',
  'src/order/index.ts': 'export const place = 1;\n',
  'src/order/contracts.ts': 'export interface OrderPlaced { id: string }\n',
  'src/order/internal.ts': 'export const secret = 1;\n',
  // allowed: another component's index.ts and contracts.ts, its own internals
  'src/payment/index.ts': "import { place } from '../order/index.ts';\nimport type { OrderPlaced } from '../order/contracts.ts';\nimport { helper } from './helper.ts';\nexport const pay = (o: OrderPlaced) => place + helper + o.id.length;\n",
  'src/payment/helper.ts': 'export const helper = 1;\n',
  // a folder nobody listed is a component too
  'src/shipping/index.ts': "import { secret } from '../order/internal.ts';\nexport const ship = secret;\n",
  'src/platform/clock.ts': "import { place } from '../order/index.ts';\nexport const now = place;\n",
  'src/ops/http.ts': "import { run } from '../../bench/load.ts';\nexport const ops = run;\n",
  // allowed: the CLI names bench only for types and through import()
  'src/cli/main.ts': "import type { Plan } from '../../bench/load.ts';\nexport const plan: Plan = 1;\nexport const load = () => import('../../bench/load.ts');\n",
  'src/cli/eager.ts': "import { run } from '../../bench/load.ts';\nexport const eager = run;\n",
  'src/audit/index.ts': "import { helper } from '../../test/support/helper.ts';\nexport const audit = helper;\n",
  // allowed: test code imports test support and dev dependencies
  'src/audit/audit.test.ts': "import fc from 'fast-check';\nimport { helper } from '../../test/support/helper.ts';\nexport const t = [fc, helper];\n",
  'src/psp/server.ts': "import fc from 'fast-check';\nimport { pino } from 'pino';\nexport const server = [fc, pino];\n",
  'src/platform/slot.ts': "import calculateSlot from 'cluster-key-slot';\nexport const slot = calculateSlot;\n",
  'src/platform/ghost.ts': "import { nothing } from './missing.ts';\nexport const ghost = nothing;\n",
  'src/platform/loop-a.ts': "import { b } from './loop-b.ts';\nexport const a = () => b;\n",
  'src/platform/loop-b.ts': "import { a } from './loop-a.ts';\nexport const b = () => a;\n",
  'src/platform/lazy-a.ts': "export const a = () => import('./lazy-b.ts');\n",
  'src/platform/lazy-b.ts': "import { a } from './lazy-a.ts';\nexport const b = a;\n",
  // allowed: a cycle closed only by a type import
  'src/platform/typed-a.ts': "import type { B } from './typed-b.ts';\nexport interface A { b?: B }\n",
  'src/platform/typed-b.ts': "import { type A } from './typed-a.ts';\nexport interface B { a?: A }\nexport const b = 1;\n",
};

describe('architecture', () => {
  // Inside the checkout (.tmp/ is ignored by git, tsc and lint:deps), so its imports of packages
  // resolve to this checkout's node_modules by walking up, with no link to it anywhere else.
  mkdirSync(join(ROOT, '.tmp'), { recursive: true });
  const dir = mkdtempSync(join(ROOT, '.tmp', 'depcruise-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('when a file breaks a dependency rule, then npm run lint:deps names that rule and that file, and nothing that is allowed', () => {
    for (const [path, text] of Object.entries(FIXTURE)) {
      mkdirSync(dirname(join(dir, path)), { recursive: true });
      writeFileSync(join(dir, path), text);
    }
    const depcruise = (output: string) => spawnSync(process.execPath, [DEPCRUISE, 'src', 'bench', 'test', '--config', join(ROOT, '.dependency-cruiser.cjs'), '--output-type', output], { cwd: dir, encoding: 'utf8' });
    const { summary } = JSON.parse(depcruise('json').stdout) as { summary: { violations: Array<{ rule: { name: string }; from: string; to: string }> } };
    const found = summary.violations.map((v) => `${v.rule.name}: ${v.from} -> ${v.to.replace(/^.*node_modules\/((?:@[^/]+\/)?[^/]+).*$/, '$1')}`).sort();
    assert.equal(depcruise('err').status, found.length, 'the command lint:deps runs exits with the number of violations');
    assert.deepEqual(found, [
      'cli-loads-bench-lazily: src/cli/eager.ts -> bench/load.ts',
      'component-through-public-interface: src/shipping/index.ts -> src/order/internal.ts',
      'no-circular: src/platform/lazy-a.ts -> src/platform/lazy-b.ts',
      'no-circular: src/platform/loop-a.ts -> src/platform/loop-b.ts',
      'no-undeclared-package: src/platform/slot.ts -> cluster-key-slot',
      'not-to-unresolvable: src/platform/ghost.ts -> ./missing.ts',
      'platform-knows-no-component: src/platform/clock.ts -> src/order/index.ts',
      'runtime-not-to-dev-dependency: src/psp/server.ts -> fast-check',
      'runtime-not-to-test: src/audit/index.ts -> test/support/helper.ts',
      'src-not-to-bench: src/ops/http.ts -> bench/load.ts',
    ]);
  });

  it('when business code needs the time, then it asks the injected clock', () => {
    const components = readdirSync(join(ROOT, 'src'), { withFileTypes: true }).filter((e) => e.isDirectory() && COMPONENT.test(`src/${e.name}/`)).map((e) => e.name);
    assert.ok(components.includes('order') && !components.includes('platform'), `components: ${components.join(', ')}`);
    const offenders = components
      .flatMap((name) => sourceFiles(join(ROOT, 'src', name)))
      .filter((f) => /new Date\(\)|Date\.now\(\)/.test(readFileSync(f, 'utf8')))
      .map((f) => relative(ROOT, f));
    assert.deepEqual(offenders, []);
  });
});
