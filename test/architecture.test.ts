import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, it } from 'node:test';

/** Keeps the layout honest: components meet only through index.ts / contracts.ts, platform knows no component, no import cycles. */
const ROOT = resolve(import.meta.dirname, '..', 'src');
const COMPONENTS = ['accounts', 'catalog', 'inventory', 'order', 'payment', 'notification'];

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return name.endsWith('.ts') && !name.endsWith('.test.ts') && name !== 'contract.ts' ? [path] : [];
  });
}

function imports(file: string): Array<{ target: string; typeOnly: boolean }> {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/^import\s+(type\s+)?[^'"]*?from\s+'(\.[^']+)'/gm)].map((m) => ({ target: resolve(dirname(file), m[2]!), typeOnly: Boolean(m[1]) }));
}

const area = (file: string) => relative(ROOT, file).split('/')[0]!;
const files = sourceFiles(ROOT);

describe('architecture', () => {
  it('when a component imports another, then only its index.ts or contracts.ts', () => {
    const offenders: string[] = [];
    for (const file of files) {
      const from = area(file);
      if (!COMPONENTS.includes(from)) continue;
      for (const { target } of imports(file)) {
        const to = area(target);
        if (to === from || !COMPONENTS.includes(to)) continue;
        const entry = relative(join(ROOT, to), target);
        if (entry !== 'index.ts' && entry !== 'contracts.ts') offenders.push(`${relative(ROOT, file)} -> ${relative(ROOT, target)}`);
      }
    }
    assert.deepEqual(offenders, []);
  });

  it('when platform code imports, then never a business component', () => {
    const offenders = files
      .filter((f) => area(f) === 'platform')
      .flatMap((f) => imports(f).filter((i) => COMPONENTS.includes(area(i.target))).map((i) => `${relative(ROOT, f)} -> ${relative(ROOT, i.target)}`));
    assert.deepEqual(offenders, []);
  });

  it('when following runtime imports, then there is no cycle', () => {
    const graph = new Map(files.map((f) => [f, imports(f).filter((i) => !i.typeOnly).map((i) => i.target)]));
    const state = new Map<string, 'visiting' | 'done'>();
    const cycles: string[] = [];
    const visit = (node: string, path: string[]) => {
      if (state.get(node) === 'done') return;
      if (state.get(node) === 'visiting') {
        cycles.push([...path.slice(path.indexOf(node)), node].map((p) => relative(ROOT, p)).join(' -> '));
        return;
      }
      state.set(node, 'visiting');
      for (const next of graph.get(node) ?? []) visit(next, [...path, node]);
      state.set(node, 'done');
    };
    for (const file of files) visit(file, []);
    assert.deepEqual(cycles, []);
  });

  it('when business code needs the time, then it asks the injected clock', () => {
    const offenders = files
      .filter((f) => COMPONENTS.includes(area(f)))
      .filter((f) => /new Date\(\)|Date\.now\(\)/.test(readFileSync(f, 'utf8')))
      .map((f) => relative(ROOT, f));
    assert.deepEqual(offenders, []);
  });
});
