import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { validate as lintDockerfile } from 'dockerfile-utils';
import { createMetrics } from '../src/platform/metrics.ts';
import { createPspMetrics } from '../src/psp/metrics.ts';
import type { PspStore } from '../src/psp/state.ts';
import { readCompose } from './support/deploy.ts';

/**
 * deploy/ checked without pulling an image: Prometheus' config and alert rules by its own tool
 * (promtool, Debian's `prometheus` package, which .ci/run installs), the Caddyfile by Caddy's
 * (Debian's `caddy`, likewise), the dashboards against the metrics the code registers. Loki's and
 * Alloy's files have no validator here (neither is packaged by Debian or npm).
 */
const ROOT = resolve(import.meta.dirname, '..');
const DEPLOY = join(ROOT, 'deploy');
const run = promisify(execFile);

async function promtool(...args: string[]): Promise<string> {
  try {
    const { stdout, stderr } = await run('promtool', args, { cwd: DEPLOY });
    return stdout + stderr;
  } catch (error) {
    const e = error as { code?: string; stdout?: string; stderr?: string };
    if (e.code === 'ENOENT') assert.fail('promtool is not installed: apt-get install -y prometheus (.ci/run does)');
    assert.fail(`promtool ${args.join(' ')} failed:\n${e.stdout ?? ''}${e.stderr ?? ''}`);
  }
}

/** Every series name flashsale's roles export (a histogram's _bucket, _sum and _count included), and Prometheus' own `up`. */
function exportedNames(): Set<string> {
  const names = new Set(['up']);
  const registries = [createMetrics('api').registry, createPspMetrics({ intents: new Map() } as unknown as PspStore).registry];
  for (const registry of registries) {
    for (const metric of registry.getMetricsAsArray()) {
      const { name, type } = metric as unknown as { name: string; type: string };
      names.add(name);
      if (type === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) names.add(name + suffix);
      if (type === 'summary') for (const suffix of ['_sum', '_count']) names.add(name + suffix);
    }
  }
  return names;
}

/** The metric names a PromQL expression reads (flashsale's own, and `up`). */
function namesIn(expr: string): string[] {
  return [...new Set([...expr.matchAll(/\b(flashsale_[a-z0-9_]+|up)\b(?=\s*[{[)]|\s*$|\s*[<>=!]|\s+(?:and|or|unless)\b)/g)].map((m) => m[1]!))];
}

function dashboards(): Array<{ file: string; json: { uid: string; panels: Array<{ type: string; title: string; datasource?: { uid: string }; targets?: Array<{ expr: string }> }>; templating: { list: Array<{ query: { query: string } | string; datasource?: { uid: string } }> } } }> {
  const dir = join(DEPLOY, 'grafana', 'dashboards');
  return readdirSync(dir).filter((f) => f.endsWith('.json')).map((file) => ({ file, json: JSON.parse(readFileSync(join(dir, file), 'utf8')) }));
}

describe('deploy/: Prometheus, alert rules and dashboards', () => {
  it('when promtool checks the config, then it and its rule file are valid', async () => {
    const out = await promtool('check', 'config', 'prometheus/prometheus.yml');
    assert.match(out, /SUCCESS: .*prometheus\.yml is valid/);
    assert.match(out, /SUCCESS: \d+ rules found/);
  });

  it('when promtool runs the alert rules\' unit tests, then every alert fires when it should and only then', async () => {
    assert.match(await promtool('check', 'rules', 'prometheus/alerts.yml'), /SUCCESS: \d+ rules found/);
    assert.match(await promtool('test', 'rules', 'prometheus/alerts.test.yml'), /SUCCESS/);
  });

  it('when every alert rule is read, then each one has a unit test, a severity, a summary and reads only exported metrics', () => {
    const rules = (parse(readFileSync(join(DEPLOY, 'prometheus', 'alerts.yml'), 'utf8')) as { groups: Array<{ rules: Array<{ alert: string; expr: string; labels?: { severity?: string }; annotations?: { summary?: string } }> }> }).groups.flatMap((g) => g.rules);
    const tests = readFileSync(join(DEPLOY, 'prometheus', 'alerts.test.yml'), 'utf8');
    const known = exportedNames();
    for (const rule of rules) {
      assert.ok(tests.includes(`alertname: ${rule.alert}`), `${rule.alert} has no unit test in alerts.test.yml`);
      assert.ok(['page', 'ticket'].includes(rule.labels?.severity ?? ''), `${rule.alert} has no severity`);
      assert.ok(rule.annotations?.summary, `${rule.alert} has no summary`);
      for (const name of namesIn(rule.expr)) assert.ok(known.has(name), `${rule.alert} reads ${name}, which nothing exports`);
    }
  });

  it('when the dashboards are read, then every query names only metrics flashsale exports, on the provisioned datasource', () => {
    const known = exportedNames();
    const datasources = (parse(readFileSync(join(DEPLOY, 'grafana', 'provisioning', 'datasources', 'datasources.yaml'), 'utf8')) as { datasources: Array<{ uid: string }> }).datasources.map((d) => d.uid);
    const found = dashboards();
    assert.deepEqual(found.map((d) => d.json.uid).sort(), ['flashsale-sale', 'flashsale-system']);
    for (const { file, json } of found) {
      const queries = json.panels.filter((p) => p.type !== 'row');
      assert.ok(queries.length > 5, `${file} has panels`);
      for (const panel of queries) {
        assert.ok(panel.datasource && datasources.includes(panel.datasource.uid), `${file} "${panel.title}" uses a datasource that is not provisioned`);
        assert.ok(panel.targets && panel.targets.length > 0, `${file} "${panel.title}" has no query`);
        for (const target of panel.targets) {
          const names = namesIn(target.expr);
          assert.ok(names.length > 0, `${file} "${panel.title}" reads no flashsale metric: ${target.expr}`);
          for (const name of names) assert.ok(known.has(name), `${file} "${panel.title}" reads ${name}, which nothing exports`);
        }
      }
      for (const variable of json.templating.list) {
        const query = typeof variable.query === 'string' ? variable.query : variable.query.query;
        for (const name of namesIn(query.replace(/^label_values\((\w+),.*$/, '$1'))) assert.ok(known.has(name), `${file} variable reads ${name}`);
      }
    }
  });
});

describe('deploy/: from a dashboard or a log line to the trace', () => {
  it('when the dashboards\' trace links and the Loki datasource are read, then they open Jaeger on services compose runs, and a log line\'s trace_id opens the provisioned Jaeger datasource', () => {
    const { services } = readCompose();
    const traced = new Set(Object.values(services).map((s) => s.environment?.OTEL_SERVICE_NAME).filter(Boolean));
    const jobs = (parse(readFileSync(join(DEPLOY, 'prometheus', 'prometheus.yml'), 'utf8')) as { scrape_configs: Array<{ job_name: string }> }).scrape_configs.map((c) => c.job_name).filter((j) => j.startsWith('flashsale-'));
    for (const job of jobs) assert.ok(traced.has(job), `Prometheus job ${job} is a traced service's name (the panels' links use the job as the service)`);
    const jaeger = 'http://localhost:16686';
    assert.ok((services.jaeger as { ports?: string[] }).ports?.includes('127.0.0.1:16686:16686'), 'Jaeger\'s UI is published where the links point');
    let panelLinks = 0;
    for (const { file, json } of dashboards()) {
      const withLinks = json as unknown as { links: Array<{ url: string }>; panels: Array<{ title: string; fieldConfig?: { defaults?: { links?: Array<{ url: string }> } } }> };
      assert.ok(withLinks.links.some((l) => l.url === `${jaeger}/search?service=flashsale-api`), `${file} links to the API's traces`);
      for (const panel of withLinks.panels) {
        for (const link of panel.fieldConfig?.defaults?.links ?? []) {
          const url = new URL(link.url.replaceAll('${', '%24%7B').replaceAll('}', '%7D'));
          assert.equal(url.origin + url.pathname, `${jaeger}/search`, `${file} "${panel.title}"`);
          const service = decodeURIComponent(url.searchParams.get('service') ?? '');
          assert.ok(traced.has(service) || service === '${__field.labels.job}', `${file} "${panel.title}" searches service ${service}`);
          panelLinks++;
        }
      }
    }
    assert.ok(panelLinks >= 2, 'the latency panels link to their slow traces');
    const loki = (parse(readFileSync(join(DEPLOY, 'grafana', 'provisioning', 'datasources', 'datasources.yaml'), 'utf8')) as { datasources: Array<{ uid: string; type: string; jsonData?: { derivedFields?: Array<{ matcherRegex: string; datasourceUid: string; url: string }> } }> }).datasources;
    const [field] = loki.find((d) => d.type === 'loki')!.jsonData!.derivedFields!;
    assert.equal(loki.find((d) => d.uid === field!.datasourceUid)?.type, 'jaeger');
    assert.equal(field!.url, '$${__value.raw}', 'the trace id itself (`$$` is a literal `$` in provisioning)');
    const traceId = 'ab'.repeat(16);
    const line = JSON.stringify({ level: 30, msg: 'request completed', trace_id: traceId, span_id: 'cd'.repeat(8) });
    assert.equal(new RegExp(field!.matcherRegex).exec(line)?.[1], traceId, 'the pattern finds the id in a JSON log line');
  });
});

/** dclint: validates against the Compose specification's JSON schema (shipped in the package) and lints; exit 0 only with no error and no warning. */
async function dclint(file: string): Promise<{ ok: boolean; output: string }> {
  const bin = join(ROOT, 'node_modules', 'dclint', 'bin', 'dclint.cjs');
  try {
    const { stdout, stderr } = await run(process.execPath, [bin, file, '-c', join(DEPLOY, 'dclint.json'), '--max-warnings', '0', '--color', 'false']);
    return { ok: true, output: stdout + stderr };
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string };
    return { ok: false, output: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

/** `caddy validate` (Debian's `caddy` package, which .ci/run installs): adapts the Caddyfile and provisions every module, serving nothing. */
async function caddyValidate(file: string): Promise<{ ok: boolean; output: string }> {
  try {
    const { stdout, stderr } = await run('caddy', ['validate', '--config', file, '--adapter', 'caddyfile']);
    return { ok: true, output: stdout + stderr };
  } catch (error) {
    const e = error as { code?: string; stdout?: string; stderr?: string };
    if (e.code === 'ENOENT') assert.fail('caddy is not installed: apt-get install -y caddy (.ci/run does)');
    return { ok: false, output: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

describe('deploy/: the load balancer\'s Caddyfile', () => {
  it('when caddy validates the Caddyfile, then it is valid; a misspelt subdirective is refused (the check bites)', async () => {
    const file = join(DEPLOY, 'caddy', 'Caddyfile');
    const good = await caddyValidate(file);
    assert.ok(good.ok, good.output);
    assert.match(good.output, /Valid configuration/);
    const dir = mkdtempSync(join(tmpdir(), 'flashsale-caddy-'));
    try {
      const broken = join(dir, 'Caddyfile');
      writeFileSync(broken, readFileSync(file, 'utf8').replace('lb_policy round_robin', 'lb_polcy round_robin'));
      const bad = await caddyValidate(broken);
      assert.equal(bad.ok, false);
      assert.match(bad.output, /unrecognized subdirective lb_polcy/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('deploy/: compose.yaml and the Dockerfile, without pulling an image', () => {
  it('when dclint checks compose.yaml, then it is valid against the Compose specification and lint-clean', async () => {
    const result = await dclint(join(DEPLOY, 'compose.yaml'));
    assert.ok(result.ok, result.output);
  });

  it('when a service has a misspelt key, then the schema check refuses the file (the check bites)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'flashsale-compose-'));
    try {
      const broken = join(dir, 'compose.yaml');
      writeFileSync(broken, readFileSync(join(DEPLOY, 'compose.yaml'), 'utf8').replace('    command: ["worker"]', '    comand: ["worker"]'));
      const result = await dclint(broken);
      assert.equal(result.ok, false);
      assert.match(result.output, /invalid-schema/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('when compose.yaml is read, then it runs every role and backend, flashsale from this Dockerfile, with the files it mounts present', () => {
    const { services } = readCompose();
    for (const name of ['postgres', 'redis', 'rabbitmq', 'migrate', 'api', 'worker', 'psp', 'lb', 'prometheus', 'grafana', 'jaeger', 'loki', 'alloy']) assert.ok(services[name], `no ${name} service`);
    assert.equal(services.api!.deploy?.replicas, 2);
    const roles: Record<string, string> = { migrate: 'migrate', api: 'api', worker: 'worker', psp: 'psp' };
    for (const [service, command] of Object.entries(roles)) {
      const s = services[service]!;
      assert.deepEqual(s.command, [command], `${service} runs flashsale ${command}`);
      assert.deepEqual(s.build, { context: '..', dockerfile: 'Dockerfile' });
      assert.equal(s.environment?.LOG_FORMAT, 'json', `${service} logs JSON for the shipper`);
    }
    for (const s of Object.values(services)) {
      for (const volume of s.volumes ?? []) {
        const source = volume.split(':')[0]!;
        if (source.startsWith('./')) assert.ok(existsSync(join(DEPLOY, source)), `${source} is mounted but missing`);
      }
    }
  });

  it('when the Dockerfile is linted, then it has no problem, is multi-stage on Node 26 (the Active LTS line since 2026-10-28; 24 is in maintenance), installs production dependencies only, runs as a user and checks its health', () => {
    const text = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
    assert.deepEqual(lintDockerfile(text).map((d) => `${d.range.start.line + 1}: ${d.message}`), []);
    const lines = text.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
    const froms = lines.filter((l) => l.startsWith('FROM '));
    assert.ok(froms.length >= 2, 'multi-stage');
    for (const from of froms) assert.match(from, /^FROM node:26[-.\w]* AS \w+$/);
    assert.ok(lines.some((l) => /^RUN npm ci --omit=dev\b/.test(l)));
    const runtime = lines.slice(lines.lastIndexOf(froms.at(-1)!));
    const user = runtime.filter((l) => l.startsWith('USER ')).at(-1);
    assert.ok(user && !/^USER (root|0)(:|$)/.test(user), `the runtime stage runs as ${user ?? 'root'}`);
    assert.ok(runtime.some((l) => l === 'HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 CMD ["node", "bin/healthcheck.js"]'));
    assert.ok(existsSync(join(ROOT, 'bin', 'healthcheck.js')));
    assert.ok(runtime.includes('ENTRYPOINT ["node", "bin/flashsale.js"]'));
  });
});
