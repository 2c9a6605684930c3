import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import uPlot from 'uplot';
import { api, describeError, watchSale } from './api.js';
import { Badge, html, Notice, usePolling } from './ui.js';

const KEEP = 180;
const COLORS = ['#2563eb', '#15803d', '#c2410c', '#7c3aed', '#b42318', '#0891b2', '#a16207', '#db2777', '#4b5563'];
const REFUSALS = ['sold_out', 'limit_exceeded', 'sale_not_active', 'rate_limited', 'overloaded', 'unavailable'];

/** A uPlot time-series chart; `data` is [times (s), ...one array per series]. */
/** uPlot cannot scale a time axis on one reading: draw it as a flat line from a second earlier. */
const drawable = (data) => (data[0].length === 1 ? data.map((series, i) => (i === 0 ? [series[0] - 1, series[0]] : [series[0], series[0]])) : data);

function Chart({ name, title, labels, data, yLabel }) {
  const box = useRef();
  const plot = useRef();
  const key = [title, ...labels].join('|');
  useEffect(() => {
    const width = () => Math.max(260, box.current.clientWidth - 10);
    plot.current = new uPlot({
      title, width: width(), height: 220,
      // At least the last minute, however few readings (a lone one makes a zero-width axis); counts and rates start at 0.
      scales: {
        x: { time: true, range: (_u, min, max) => { const end = max ?? Date.now() / 1000; return [Math.min(min ?? end, end - 60), end + 1]; } },
        y: { range: (_u, _min, max) => [0, Math.max(1, max ?? 1) * 1.05] },
      },
      axes: [{}, { label: yLabel, size: 50 }],
      series: [{}, ...labels.map((label, i) => ({ label, stroke: COLORS[i % COLORS.length], width: 2, points: { show: false } }))],
      legend: { live: false },
    }, drawable(data), box.current);
    const onResize = () => plot.current.setSize({ width: width(), height: 220 });
    addEventListener('resize', onResize);
    return () => {
      removeEventListener('resize', onResize);
      plot.current.destroy();
    };
  }, [key]);
  useEffect(() => {
    plot.current?.setData(drawable(data));
  }, [data]);
  const last = data.slice(1).map((s) => s[s.length - 1]);
  return html`<figure class="chart" data-chart=${name} data-points=${data[0].length} data-last=${JSON.stringify(last)} data-x=${JSON.stringify([data[0][0], data[0][data[0].length - 1]])} style="margin:0">
    <div ref=${box} role="img" aria-label=${`${title}: ${labels.map((l, i) => `${l} ${last[i] ?? 'no data'}`).join(', ')}`}></div>
  </figure>`;
}

export function OpsPage() {
  const [sales] = usePolling(() => api('GET', '/v1/flash-sales?limit=100'), 10_000);
  const [saleId, setSaleId] = useState();
  useEffect(() => {
    if (saleId || !sales?.sales.length) return;
    const first = sales.sales.find((s) => s.status === 'active') ?? sales.sales[0];
    setSaleId(first.id);
  }, [sales]);
  const sale = sales?.sales.find((s) => s.id === saleId);
  return html`
    <h1>Operations</h1>
    <label style="max-width:30rem">Sale
      <select name="sale" value=${saleId ?? ''} onChange=${(e) => setSaleId(e.currentTarget.value)}>
        ${(sales?.sales ?? []).map((s) => html`<option value=${s.id} key=${s.id}>${s.name} (${s.status})</option>`)}
      </select>
    </label>
    ${sale ? html`<${SaleBoard} key=${sale.id} sale=${sale} />` : html`<p>No sales yet.</p>`}
    <${AuditPanel} />
    <${DeadLetters} />`;
}

function SaleBoard({ sale }) {
  const [stats, setStats] = useState();
  const [error, setError] = useState();
  const [rates, setRates] = useState([[], [], [], ...REFUSALS.map(() => [])]);
  const [burn, setBurn] = useState([[], ...sale.items.map(() => [])]);
  const previous = useRef();

  useEffect(() => {
    let stopped = false;
    let timer;
    const poll = async () => {
      try {
        const s = await api('GET', `/v1/admin/stats?saleId=${sale.id}`);
        if (stopped) return;
        setStats(s);
        setError(undefined);
        const t = Date.parse(s.at) / 1000;
        const before = previous.current;
        previous.current = { t, attempts: s.attempts };
        if (before && t > before.t) {
          const rate = (outcome) => Math.max(0, ((s.attempts[outcome] ?? 0) - (before.attempts[outcome] ?? 0)) / (t - before.t));
          const total = Object.keys(s.attempts).reduce((sum, o) => sum + rate(o), 0);
          setRates((r) => [[...r[0], t], [...r[1], total], [...r[2], rate('accepted')], ...REFUSALS.map((o, i) => [...r[3 + i], rate(o)])].map((a) => a.slice(-KEEP)));
        }
      } catch (e) {
        if (!stopped) setError(e);
      }
      if (!stopped) timer = setTimeout(poll, 1000);
    };
    void poll();
    const stop = watchSale(sale.id, (snapshot) => {
      const t = Date.parse(snapshot.serverTime) / 1000;
      setBurn((b) => [[...b[0], t], ...sale.items.map((item, i) => [...b[1 + i], snapshot.items.find((x) => x.id === item.id)?.remaining ?? null])].map((a) => a.slice(-KEEP)));
    });
    return () => {
      stopped = true;
      clearTimeout(timer);
      stop();
    };
  }, [sale.id]);

  // A step chart needs a point now, not only at each change: extend the last reading every second.
  useEffect(() => {
    const timer = setInterval(() => setBurn((b) => (b[0].length ? [[...b[0], Date.now() / 1000], ...b.slice(1).map((s) => [...s, s[s.length - 1]])].map((a) => a.slice(-KEEP)) : b)), 1000);
    return () => clearInterval(timer);
  }, [sale.id]);

  const labels = useMemo(() => sale.items.map((i) => i.productName), [sale.id]);
  return html`
    <p><${Badge} value=${sale.status} /> <a href=${`#/sales/${sale.id}`}>open the storefront page</a></p>
    ${error ? html`<${Notice} kind="error">${describeError(error)}<//>` : null}
    <div class="grid" style="grid-template-columns:repeat(auto-fill,minmax(22rem,1fr))">
      <${Chart} name="attempts" title=${`Purchase attempts per second (this sale, ${stats?.attemptsScope === 'this-process' ? 'answered by this API process' : 'over every API process'})`} yLabel="/s" labels=${['attempts', 'accepted', ...REFUSALS]} data=${rates} />
      <${Chart} name="burn-down" title="Remaining stock per item" yLabel="units" labels=${labels} data=${burn} />
    </div>
    ${stats ? html`
      <h2>Stock of this sale, by state (units)</h2>
      <${Kpis} units=${stats.stock} name="sale" />
      <h2>All sales (the audit's totals)</h2>
      <${Kpis} units=${stats.allStock} name="all" />
      <div class="grid">
        <section><h2>Holds by state</h2>
          <table><thead><tr><th>State</th><th class="num">Holds</th><th class="num">Units</th></tr></thead>
          <tbody>${stats.holds.map((r) => html`<tr key=${r.status} data-holds=${r.status}><td>${r.status}</td><td class="num">${r.holds}</td><td class="num">${r.units}</td></tr>`)}</tbody></table></section>
        <section><h2>Orders by status</h2>
          <table><thead><tr><th>Status</th><th class="num">Orders</th></tr></thead>
          <tbody>${stats.orders.map((r) => html`<tr key=${r.status} data-orders=${r.status}><td><${Badge} value=${r.status} /></td><td class="num">${r.orders}</td></tr>`)}</tbody></table></section>
        <section><h2>Messages</h2>
          <table><tbody>
            <tr><th>Outbox pending</th><td class="num">${stats.broker.outboxPending}</td></tr>
            <tr><th>Outbox lag</th><td class="num">${stats.broker.outboxLagSeconds.toFixed(1)} s</td></tr>
            <tr><th>Deliveries queued</th><td class="num">${stats.broker.deliveriesPending}</td></tr>
            <tr><th>Dead letters</th><td class="num">${stats.broker.deadLetters}</td></tr>
          </tbody></table></section>
        <section><h2>Queues</h2>
          <table data-queues=${stats.queues.length}><thead><tr><th>Consumer</th><th class="num">Ready</th><th class="num">Dead</th></tr></thead>
          <tbody>${stats.queues.map((q) => html`<tr key=${q.consumer} data-queue=${q.consumer}><td>${q.consumer}</td><td class="num">${q.work}</td><td class="num">${q.dead}</td></tr>`)}</tbody></table></section>
      </div>` : html`<p>Loading the numbers…</p>`}`;
}

function Kpis({ units, name }) {
  const cells = [['initial', 'Initial'], ['available', 'Available'], ['held', 'Held'], ['sold', 'Sold'], ['writtenOff', 'Written off']];
  return html`<div class="kpis" data-kpis=${name}>${cells.map(([k, label]) => html`<div class="kpi" key=${k}><span class="muted">${label}</span><b data-kpi=${k}>${units[k]}</b></div>`)}</div>`;
}

function AuditPanel() {
  const [report, error, rerun] = usePolling(() => api('GET', '/v1/admin/audit'), 15_000);
  return html`
    <h2>Audit</h2>
    <div class="row"><button class="secondary" onClick=${rerun}>Run the audit now</button>
      ${report ? html`<span data-audit=${report.ok ? 'ok' : 'violations'}><span class=${`badge ${report.ok ? 'active' : 'CANCELLED'}`}>${report.ok ? 'ok' : 'violations'}</span> ${report.ok ? 'Every invariant holds' : `${report.violations.length} violation(s)`} · checked ${new Date(report.checkedAt).toLocaleTimeString()}</span>` : null}
    </div>
    ${error ? html`<${Notice} kind="error">${describeError(error)}<//>` : null}
    ${report ? html`
      <p class="muted" data-audit-stock=${JSON.stringify(report.stock)}>Stock over every sale: ${report.stock.initial} initial = ${report.stock.available} available + ${report.stock.held} held + ${report.stock.sold} sold + ${report.stock.writtenOff} written off; oversold ${report.oversoldUnits}.
        Money: ${report.money.reconciliation.ok ? 'reconciled with the provider' : `${report.money.reconciliation.mismatches.length} mismatch(es)`}${report.money.reconciliation.unsettled ? `, ${report.money.reconciliation.unsettled} in flight` : ''}.</p>
      ${report.violations.length ? html`<ul>${report.violations.map((v, i) => html`<li key=${i}><code>${v.check}</code>: ${v.message}</li>`)}</ul>` : null}` : null}`;
}

function DeadLetters() {
  const [data, error, reload] = usePolling(() => api('GET', '/v1/admin/dead-letters?limit=50'), 5000);
  const [open, setOpen] = useState();
  const [message, setMessage] = useState();
  async function replay(letter) {
    try {
      await api('POST', `/v1/admin/dead-letters/${letter.consumer}/${letter.messageId}/replay`);
      setMessage({ kind: 'ok', text: `Replayed ${letter.topic} to ${letter.consumer}.` });
      setOpen(undefined);
      reload();
    } catch (e) {
      setMessage({ kind: 'error', text: describeError(e) });
    }
  }
  const letters = data?.deadLetters ?? [];
  return html`
    <h2>Dead letters</h2>
    ${error ? html`<${Notice} kind="error">${describeError(error)}<//>` : null}
    ${message ? html`<${Notice} kind=${message.kind}>${message.text}<//>` : null}
    ${letters.length === 0 ? html`<p class="muted" data-dead-letters="0">None: every message was delivered or is still being tried.</p>` : html`
      <div class="table-wrap"><table data-dead-letters=${letters.length}>
        <thead><tr><th>Consumer</th><th>Topic</th><th class="num">Attempts</th><th>Dead since</th><th>Last error</th><th><span class="sr-only">Actions</span></th></tr></thead>
        <tbody>${letters.map((l) => html`<tr key=${l.consumer + l.messageId}>
          <td>${l.consumer}</td><td>${l.topic}</td><td class="num">${l.attempts}</td><td>${new Date(l.deadAt).toLocaleString()}</td><td>${l.lastError ?? ''}</td>
          <td class="row"><button class="secondary" onClick=${() => setOpen(open === l ? undefined : l)} aria-expanded=${open === l}>Inspect</button><button onClick=${() => replay(l)}>Replay</button></td></tr>`)}</tbody>
      </table></div>`}
    ${open ? html`<pre aria-label="Dead letter payload">${JSON.stringify(open, null, 2)}</pre>` : null}`;
}
