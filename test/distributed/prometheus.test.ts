import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { parse, stringify } from 'yaml';
import { distributedRun, type DistributedRun } from '../support/distributed.ts';
import { DEPLOY, readCompose } from '../support/deploy.ts';
import { freePort, startCliProcess, stopProcess, type CliProcess } from '../support/process.ts';

/**
 * A real Prometheus (Debian's `prometheus`, as .ci/run installs it) with deploy/prometheus/ — the
 * scrape jobs and the alert rules of compose.yaml — against flashsale's roles started as separate
 * processes with the commands compose.yaml gives them (`migrate`, `api`, `worker`, `psp`); only each
 * job's service discovery is swapped for the processes' local addresses.
 */
const JOB_OF: Record<string, string> = { api: 'flashsale-api', worker: 'flashsale-worker', psp: 'flashsale-psp' };

interface Target { labels: { job: string; instance: string }; health: string; lastError: string }

describe('Prometheus scraping every flashsale role', () => {
  let run: DistributedRun;
  const children: CliProcess[] = [];
  let prometheus: ChildProcess | undefined;
  let prometheusLog = '';
  let promUrl = '';
  let dir = '';
  let workerPort = 0;

  before(async () => {
    const { services } = readCompose();
    const command = (service: string) => services[service]!.command!;
    run = await distributedRun(`prometheus-${Date.now()}-secret-key`);
    const [pspPort, promPort] = [await freePort(), await freePort()];
    workerPort = await freePort();
    dir = mkdtempSync(join(tmpdir(), 'flashsale-prometheus-'));
    const pspUrl = `http://127.0.0.1:${pspPort}`;
    const env = {
      ...run.env, LOG_LEVEL: 'warn', PSP_URL: pspUrl, PSP_PUBLIC_URL: pspUrl, PSP_PORT: String(pspPort), PSP_DATA_DIR: join(dir, 'psp'),
      PSP_WEBHOOK_URL: `http://127.0.0.1:${run.apiPort}/v1/payments/webhook`, WORKER_PORT: String(workerPort),
    };
    const migrate = spawn(process.execPath, [join(import.meta.dirname, '..', '..', 'bin', 'flashsale.js'), ...command('migrate')], { env: { ...process.env, ...env }, stdio: 'ignore' });
    assert.equal((await once(migrate, 'exit'))[0], 0, 'flashsale migrate');
    const apiUrl = `http://127.0.0.1:${run.apiPort}`;
    const workerUrl = `http://127.0.0.1:${workerPort}`;
    const started = await Promise.allSettled([
      startCliProcess(command('psp'), env, { ready: { http: `${pspUrl}/health` }, url: pspUrl }),
      startCliProcess(command('api'), env, { ready: { http: `${apiUrl}/ready` }, url: apiUrl }),
      startCliProcess(command('worker'), env, { ready: { http: `${workerUrl}/ready` }, url: workerUrl }),
    ]);
    for (const s of started) if (s.status === 'fulfilled') children.push(s.value);
    const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed) throw failed.reason;

    // deploy/prometheus/prometheus.yml, each job's DNS discovery replaced by the local process.
    const config = parse(readFileSync(join(DEPLOY, 'prometheus', 'prometheus.yml'), 'utf8')) as {
      global: Record<string, string>; rule_files: string[]; scrape_configs: Array<{ job_name: string; dns_sd_configs?: unknown; static_configs?: Array<{ targets: string[] }> }>;
    };
    config.global.scrape_interval = '1s';
    config.global.evaluation_interval = '1s';
    config.rule_files = config.rule_files.map((f) => join(DEPLOY, 'prometheus', f));
    const local: Record<string, string> = { 'flashsale-api': `127.0.0.1:${run.apiPort}`, 'flashsale-worker': `127.0.0.1:${workerPort}`, 'flashsale-psp': `127.0.0.1:${pspPort}`, prometheus: `127.0.0.1:${promPort}` };
    for (const job of config.scrape_configs) {
      assert.ok(local[job.job_name], `a local target for ${job.job_name}`);
      delete job.dns_sd_configs;
      job.static_configs = [{ targets: [local[job.job_name]!] }];
    }
    writeFileSync(join(dir, 'prometheus.yml'), stringify(config));
    promUrl = `http://127.0.0.1:${promPort}`;
    prometheus = spawn('prometheus', [
      `--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'tsdb')}`, `--web.listen-address=127.0.0.1:${promPort}`,
    ], { stdio: ['ignore', 'pipe', 'pipe'] });
    prometheus.on('error', (error) => { prometheusLog += `\n${String(error)} (apt-get install -y prometheus; .ci/run does)`; });
    prometheus.stdout!.on('data', (d: Buffer) => (prometheusLog += d.toString()));
    prometheus.stderr!.on('data', (d: Buffer) => (prometheusLog += d.toString()));
  });

  after(async () => {
    if (prometheus && prometheus.exitCode === null) {
      prometheus.kill('SIGTERM');
      await once(prometheus, 'exit');
    }
    for (const child of children) await stopProcess(child);
    await run?.cleanup();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function api<T>(path: string): Promise<T> {
    const res = await fetch(`${promUrl}${path}`);
    const body = (await res.json()) as { status: string; data: T };
    assert.equal(body.status, 'success', JSON.stringify(body));
    return body.data;
  }

  async function eventually<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 25_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    let last: unknown;
    for (;;) {
      try {
        const value = await probe();
        if (value !== undefined) return value;
      } catch (error) {
        last = error;
      }
      if (Date.now() > deadline) assert.fail(`${what} within ${timeoutMs / 1000} s (last: ${String(last)})\nprometheus:\n${prometheusLog.slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  it('when Prometheus runs deploy/prometheus/, then every role\'s target is up, the key series exist and the alert rules evaluate', async () => {
    const targets = await eventually('every target up', async () => {
      const { activeTargets } = await api<{ activeTargets: Target[] }>('/api/v1/targets?state=active');
      return activeTargets.length === 4 && activeTargets.every((t) => t.health === 'up') ? activeTargets : undefined;
    });
    assert.deepEqual(targets.map((t) => t.labels.job).sort(), [...Object.values(JOB_OF), 'prometheus'].sort());

    const query = async (promql: string) => (await api<{ result: Array<{ metric: Record<string, string>; value: [number, string] }> }>(`/api/v1/query?query=${encodeURIComponent(promql)}`)).result;
    const roles = await eventually('each role\'s process_info', async () => {
      const result = await query('flashsale_process_info');
      return result.length === 3 ? result.map((r) => `${r.metric.job}=${r.metric.role}`).sort() : undefined;
    });
    assert.deepEqual(roles, ['flashsale-api=api', 'flashsale-psp=psp', 'flashsale-worker=worker']);
    for (const [promql, job] of [
      ['flashsale_outbox_lag_seconds', 'flashsale-worker'],
      ['flashsale_queue_messages{queue="work", consumer="order-payments"}', 'flashsale-worker'],
      ['flashsale_orders{status="PAID"}', 'flashsale-api'],
      ['flashsale_oversold_guard_trips_total{reason="sold_out"}', 'flashsale-api'],
      ['flashsale_http_requests_total{route="/ready"}', 'flashsale-api'],
      ['flashsale_reconciliation_mismatches', 'flashsale-worker'],
      ['flashsale_nodejs_eventloop_lag_p99_seconds', 'flashsale-psp'],
    ] as const) {
      await eventually(`${promql} from ${job}`, async () => ((await query(promql)).some((r) => r.metric.job === job) ? true : undefined));
    }

    const groups = await eventually('the alert rules evaluated', async () => {
      const data = await api<{ groups: Array<{ name: string; rules: Array<{ name: string; health: string; lastError?: string }> }> }>('/api/v1/rules');
      const rules = data.groups.flatMap((g) => g.rules);
      return rules.length > 0 && rules.every((r) => r.health === 'ok') ? data.groups : undefined;
    });
    assert.ok(groups.some((g) => g.name === 'flashsale'));
    const firing = await query('ALERTS{alertstate="firing"}');
    assert.deepEqual(firing.map((a) => a.metric.alertname), [], 'nothing fires on a healthy, idle deployment');
  });

  it('when the image\'s healthcheck script asks the worker, then it exits 0; asked a port nobody serves, 1', async () => {
    const script = join(import.meta.dirname, '..', '..', 'bin', 'healthcheck.js');
    const exec = promisify(execFile);
    await exec(process.execPath, [script], { env: { ...process.env, HEALTHCHECK_PORT: String(workerPort) } });
    await assert.rejects(exec(process.execPath, [script], { env: { ...process.env, HEALTHCHECK_PORT: String(await freePort()) } }), (error: { code?: number }) => error.code === 1);
  });
});
