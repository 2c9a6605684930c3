/**
 * Screenshots of the provisioned Grafana dashboards without Grafana (its image cannot be pulled
 * here): runs `flashsale start` and a real Prometheus with deploy/prometheus/, plays a small flash
 * sale against it (buyers race for the demo sale's units, most of the winners pay), then draws each
 * dashboard's panels from its own JSON — the same PromQL, asked of that Prometheus over the sale's
 * window — laid out by their gridPos, and has headless Chromium photograph the page.
 *
 *   node bench/dashboard-shot.ts [out-dir]     (default docs/images; needs prometheus and chromium)
 *
 * A stand-in for Grafana's renderer: panel types are drawn as lines (timeseries) or a number (stat,
 * gauge); colours, thresholds and units are approximate.
 */
import { spawn, execFile } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { randomUUID } from 'node:crypto';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { parse, stringify } from 'yaml';
import { freePort, startCliProcess, stopProcess } from '../src/cli/child.ts';
import { TokenService } from '../src/platform/tokens.ts';

const ROOT = resolve(import.meta.dirname, '..');
const DEPLOY = join(ROOT, 'deploy');
const DEV_JWT_SECRET = 'dev-only-secret-change-me-please';

interface Panel { id: number; type: string; title: string; gridPos: { h: number; w: number; x: number; y: number }; targets?: Array<{ expr: string; legendFormat: string }>; fieldConfig?: { defaults?: { unit?: string } } }
interface Dashboard { uid: string; title: string; panels: Panel[] }
type Series = { label: string; points: Array<[number, number]> };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<void> {
  const outDir = resolve(process.argv[2] ?? join(ROOT, 'docs', 'images'));
  const dir = mkdtempSync(join(tmpdir(), 'flashsale-dashboard-shot-'));
  const [apiPort, pspPort, promPort] = [await freePort(), await freePort(), await freePort()];
  const api = `http://127.0.0.1:${apiPort}`;
  const server = await startCliProcess(['start'], {
    PORT: String(apiPort), PSP_PORT: String(pspPort), DATA_DIR: join(dir, 'data'), PSP_DATA_DIR: join(dir, 'psp'), LOG_LEVEL: 'warn', LOG_FORMAT: 'json',
    RATE_LIMIT_IP_MAX: '1000000', RATE_LIMIT_USER_MAX: '1000000', MAX_EVENT_LOOP_DELAY_MS: '0', JWT_SECRET: DEV_JWT_SECRET,
  }, { ready: { http: `${api}/ready` }, url: api, timeoutMs: 120_000 });

  const config = parse(readFileSync(join(DEPLOY, 'prometheus', 'prometheus.yml'), 'utf8')) as { global: Record<string, string>; rule_files: string[]; scrape_configs: Array<{ job_name: string; dns_sd_configs?: unknown; static_configs?: unknown }> };
  config.global.scrape_interval = '1s';
  config.global.evaluation_interval = '1s';
  config.rule_files = config.rule_files.map((f) => join(DEPLOY, 'prometheus', f));
  // `start` is every role in one process: the API job scrapes it, the simulator job its simulator.
  const local: Record<string, string> = { 'flashsale-api': `127.0.0.1:${apiPort}`, 'flashsale-psp': `127.0.0.1:${pspPort}`, prometheus: `127.0.0.1:${promPort}` };
  config.scrape_configs = config.scrape_configs.filter((j) => local[j.job_name]).map((j) => ({ ...j, dns_sd_configs: undefined, static_configs: [{ targets: [local[j.job_name]!] }] }));
  writeFileSync(join(dir, 'prometheus.yml'), stringify(config));
  const prometheus = spawn('prometheus', [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'tsdb')}`, `--web.listen-address=127.0.0.1:${promPort}`], { stdio: 'ignore' });
  const prom = `http://127.0.0.1:${promPort}`;
  try {
    const saleId = await playSale(api, pspPort);
    await sleep(3000);
    const end = Date.now() / 1000;
    const start = end - 150;
    mkdirSync(outDir, { recursive: true });
    for (const file of ['sale-live.json', 'system-health.json']) {
      const dashboard = JSON.parse(readFileSync(join(DEPLOY, 'grafana', 'dashboards', file), 'utf8')) as Dashboard;
      const html = await renderDashboard(dashboard, prom, { start, end, saleId });
      const page = join(dir, `${dashboard.uid}.html`);
      writeFileSync(page, html);
      const height = Math.max(...dashboard.panels.map((p) => p.gridPos.y + p.gridPos.h)) * 30 + 80;
      const png = join(outDir, `${dashboard.uid}.png`);
      await promisify(execFile)('chromium', ['--headless', '--no-sandbox', '--disable-gpu', '--hide-scrollbars', `--window-size=1440,${height}`, `--screenshot=${png}`, `file://${page}`], { timeout: 60_000 });
      process.stdout.write(`${png}\n`);
    }
  } finally {
    prometheus.kill('SIGTERM');
    await once(prometheus, 'exit');
    await stopProcess(server);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The demo's order-hold sale, once open: 400 buyers race for it; most winners pay, some cancel, the rest let it run. Answers the sale's id. */
async function playSale(api: string, pspPort: number): Promise<string> {
  const tokens = new TokenService(DEV_JWT_SECRET, 3600);
  const sales = (await (await fetch(`${api}/v1/flash-sales`)).json()) as { sales: Array<{ id: string; holdMode: string; startsAt: string; items: Array<{ id: string; perUserLimit: number }> }> };
  const sale = sales.sales.find((s) => s.holdMode === 'order')!;
  const wait = Date.parse(sale.startsAt) - Date.now();
  process.stdout.write(`sale ${sale.id} opens in ${Math.max(0, Math.round(wait / 1000))} s\n`);
  await sleep(Math.max(0, wait) + 15_000); // a quiet stretch on the charts first
  const buyers = Array.from({ length: 400 }, () => tokens.issue({ userId: randomUUID(), role: 'buyer' }));
  const post = (path: string, token: string, body?: unknown) => fetch(`${api}${path}`, {
    method: 'POST',
    headers: body === undefined ? { authorization: `Bearer ${token}` } : { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const orders: Array<{ token: string; id: string }> = [];
  for (let wave = 0; wave < 4; wave++) {
    await Promise.all(buyers.slice(wave * 100, wave * 100 + 100).map(async (token, i) => {
      const item = sale.items[i % sale.items.length]!;
      const res = await post('/v1/orders', token, { items: [{ saleItemId: item.id, quantity: 1 }] });
      if (res.status === 201) orders.push({ token, id: ((await res.json()) as { id: string }).id });
      else await res.arrayBuffer();
    }));
    await sleep(4000);
  }
  for (const [i, order] of orders.entries()) {
    if (i % 10 === 9) continue; // left to expire
    if (i % 10 === 8) {
      await (await post(`/v1/orders/${order.id}/cancel`, order.token)).arrayBuffer();
      continue;
    }
    const answer = await post(`/v1/orders/${order.id}/payment`, order.token);
    const payment = (await answer.json()) as { providerPaymentId?: string };
    if (!payment.providerPaymentId) process.stdout.write(`payment of ${order.id}: ${answer.status} ${JSON.stringify(payment)}\n`);
    if (payment.providerPaymentId) await (await fetch(`http://127.0.0.1:${pspPort}/pay/${payment.providerPaymentId}/pay`, { method: 'POST', redirect: 'manual' })).arrayBuffer();
    if (i % 25 === 0) await sleep(1000);
  }
  await sleep(15_000);
  return sale.id;
}

async function queryRange(prom: string, expr: string, start: number, end: number): Promise<Array<{ metric: Record<string, string>; values: Array<[number, string]> }>> {
  const url = `${prom}/api/v1/query_range?query=${encodeURIComponent(expr)}&start=${start}&end=${end}&step=2`;
  const body = (await (await fetch(url)).json()) as { status: string; error?: string; data: { result: Array<{ metric: Record<string, string>; values: Array<[number, string]> }> } };
  if (body.status !== 'success') throw new Error(`${expr}: ${body.error}`);
  return body.data.result;
}

async function panelSeries(panel: Panel, prom: string, window: { start: number; end: number; saleId: string }): Promise<Series[]> {
  const series: Series[] = [];
  for (const target of panel.targets ?? []) {
    const expr = target.expr.replaceAll('$sale_id', window.saleId).replaceAll('$__range', `${Math.round(window.end - window.start)}s`).replaceAll('$__rate_interval', '1m');
    for (const r of await queryRange(prom, expr, window.start, window.end)) {
      const label = target.legendFormat.replace(/\{\{(\w+)\}\}/g, (_m, k: string) => r.metric[k] ?? '');
      series.push({ label: label.length > 28 ? `…${label.slice(-27)}` : label, points: r.values.map(([t, v]) => [t, Number(v)]) });
    }
  }
  return series;
}

function formatValue(value: number, unit: string | undefined): string {
  if (!Number.isFinite(value)) return '–';
  if (unit === 'percentunit') return `${(value * 100).toFixed(1)} %`;
  if (unit === 's') return value < 1 ? `${(value * 1000).toFixed(0)} ms` : `${value.toFixed(1)} s`;
  if (unit === 'bytes') return `${(value / 1048576).toFixed(0)} MiB`;
  return Number.isInteger(value) ? String(value) : value.toFixed(2);
}

async function lineChart(series: Series[], width: number, height: number, unit: string | undefined): Promise<string> {
  const values = series.flatMap((s) => s.points.map(([t, v]) => ({ t: t * 1000, v: unit === 'percentunit' ? v * 100 : v, s: s.label })));
  const spec: TopLevelSpec = {
    width, height, autosize: { type: 'fit', contains: 'padding' }, background: '#181b1f', padding: 4, data: { values },
    config: { axis: { labelColor: '#ccccdc', titleColor: '#ccccdc', gridColor: '#2c3235', domainColor: '#2c3235', tickColor: '#2c3235', labelFontSize: 10 }, legend: { labelColor: '#ccccdc', labelFontSize: 10, orient: 'bottom', columns: 3, symbolSize: 40 }, view: { stroke: null } },
    mark: { type: 'line', strokeWidth: 1.5, interpolate: 'step-after' },
    encoding: {
      x: { field: 't', type: 'temporal', title: null, axis: { format: '%H:%M:%S', tickCount: 5 } },
      y: { field: 'v', type: 'quantitative', title: null, axis: { tickCount: 4 } },
      color: { field: 's', type: 'nominal', title: null, scale: { scheme: 'tableau10' } },
    },
  };
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  return svg;
}

async function renderDashboard(dashboard: Dashboard, prom: string, window: { start: number; end: number; saleId: string }): Promise<string> {
  const COL = 1400 / 24;
  const ROW = 30;
  const cells: string[] = [];
  for (const panel of dashboard.panels) {
    const { x, y, w, h } = panel.gridPos;
    const style = `left:${x * COL + 20}px;top:${y * ROW + 60}px;width:${w * COL - 6}px;height:${h * ROW - 6}px`;
    if (panel.type === 'row') {
      cells.push(`<div class="row" style="${style}">${panel.title}</div>`);
      continue;
    }
    const unit = panel.fieldConfig?.defaults?.unit;
    const series = await panelSeries(panel, prom, window);
    let body: string;
    if (panel.type === 'timeseries') {
      body = series.length ? await lineChart(series, w * COL - 24, h * ROW - 40, unit) : '<div class="empty">No data</div>';
    } else {
      const last = series.map((s) => s.points.at(-1)?.[1] ?? Number.NaN);
      body = `<div class="stat">${series.length ? last.map((v, i) => `<span>${formatValue(v, unit)}${series.length > 1 ? `<small>${series[i]!.label}</small>` : ''}</span>`).join('') : 'No data'}</div>`;
    }
    cells.push(`<div class="panel" style="${style}"><div class="title">${panel.title}</div>${body}</div>`);
  }
  const when = new Date(window.end * 1000).toISOString().replace('T', ' ').slice(0, 19);
  return `<!doctype html><meta charset="utf-8"><style>
    body{margin:0;background:#111217;font-family:Inter,Helvetica,Arial,sans-serif;color:#ccccdc}
    h1{position:absolute;left:20px;top:8px;font-size:18px;font-weight:500;margin:0}
    h1 small{color:#8e8e8e;font-size:12px;margin-left:12px}
    .panel{position:absolute;background:#181b1f;border:1px solid #2c3235;border-radius:3px;overflow:hidden;box-sizing:border-box;padding:6px 8px}
    .title{font-size:13px;font-weight:500;margin-bottom:4px}
    .row{position:absolute;font-size:15px;font-weight:500;padding-top:6px}
    .stat{display:flex;gap:18px;align-items:center;justify-content:center;height:calc(100% - 24px);font-size:34px;color:#73bf69;flex-wrap:wrap}
    .stat span{display:flex;flex-direction:column;align-items:center}.stat small{font-size:11px;color:#ccccdc}
    .empty{color:#8e8e8e;text-align:center;margin-top:40px}
  </style><h1>${dashboard.title}<small>drawn from deploy/grafana/dashboards/${dashboard.uid === 'flashsale-sale' ? 'sale-live' : 'system-health'}.json, last 2.5 min to ${when} UTC</small></h1>${cells.join('\n')}`;
}

await main();
