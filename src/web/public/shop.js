import { useEffect, useRef, useState } from 'preact/hooks';
import { api, describeError, duration, money, newKey, watchSale } from './api.js';
import { Badge, html, Notice, useNow, usePolling } from './ui.js';

export function SalesList() {
  const [data, error] = usePolling(() => api('GET', '/v1/flash-sales?limit=50'), 5000);
  const now = useNow(1000);
  if (error && !data) return html`<${Notice} kind="error">${describeError(error)}<//>`;
  if (!data) return html`<p>Loading sales…</p>`;
  const sales = [...data.sales].sort((a, b) => order(a) - order(b) || Date.parse(a.startsAt) - Date.parse(b.startsAt));
  return html`
    <h1>Flash sales</h1>
    ${sales.length === 0 ? html`<p>No sales yet.</p>` : null}
    <div class="grid">
      ${sales.map((sale) => html`
        <article class="card" key=${sale.id} data-sale=${sale.id}>
          <h3><a href=${`#/sales/${sale.id}`}>${sale.name}</a></h3>
          <p><${Badge} value=${sale.status} /> <span class="muted">${sale.holdMode === 'cart' ? 'cart & checkout' : 'buy now'}</span></p>
          <p class="muted">${sale.status === 'scheduled' ? html`Opens in <span class="countdown">${duration(Date.parse(sale.startsAt) - now)}</span>` : sale.status === 'active' ? `Ends ${new Date(sale.endsAt).toLocaleString()}` : sale.status === 'cancelled' ? 'Cancelled by the shop' : `Ended ${new Date(sale.endsAt).toLocaleString()}`}</p>
          <ul class="muted">${sale.items.map((item) => html`<li key=${item.id}>${item.productName}: ${money(item.flashPrice, sale.currency)} — ${item.remaining > 0 ? `${item.remaining} left` : 'sold out'}</li>`)}</ul>
        </article>`)}
    </div>`;
}

const order = (sale) => ({ active: 0, scheduled: 1, ended: 2 })[sale.status] ?? 3;

/** The sale's products' list prices (the sale itself carries only flash prices). */
async function listPrices(sale) {
  try {
    const { products } = await api('GET', `/v1/products?shopId=${sale.shopId}&limit=100`);
    return Object.fromEntries(products.map((p) => [p.id, p.price]));
  } catch {
    return {};
  }
}

export function SalePage({ id, me }) {
  const [sale, setSale] = useState();
  const [prices, setPrices] = useState({});
  const [live, setLive] = useState();
  const [offset, setOffset] = useState(0);
  const [error, setError] = useState();
  useEffect(() => {
    let stop = () => {};
    setSale(undefined);
    api('GET', `/v1/flash-sales/${id}`).then(async (s) => {
      setSale(s);
      setPrices(await listPrices(s));
    }, setError);
    stop = watchSale(id, (snapshot) => {
      setLive(snapshot);
      setOffset(Date.parse(snapshot.serverTime) - Date.now());
    });
    return () => stop();
  }, [id]);
  const now = useNow(250, offset);
  if (error) return html`<${Notice} kind="error">${describeError(error)}<//>`;
  if (!sale) return html`<p>Loading the sale…</p>`;
  const status = live?.status ?? sale.status;
  // The server says when the sale opens (live status); the countdown only fills the wait.
  const opensIn = Date.parse(sale.startsAt) - now;
  const remainingOf = (item) => live?.items.find((i) => i.id === item.id)?.remaining ?? item.remaining;
  return html`
    <p><a href="#/">← All sales</a></p>
    <h1>${sale.name}</h1>
    <p><${Badge} value=${status} />${' '}
      ${status === 'scheduled' ? html`<span>Opens in <span class="countdown" data-countdown="start" aria-live="off">${duration(opensIn)}</span></span>` : null}
      ${status === 'active' ? html`<span class="muted">Ends in <span class="countdown">${duration(Date.parse(sale.endsAt) - now)}</span></span>` : null}
    </p>
    <p class="muted">You have ${Math.round(sale.paymentWindowS / 60)} minutes to pay once you ${sale.holdMode === 'cart' ? 'add an item to your cart' : 'buy'}.</p>
    ${sale.holdMode === 'cart' && me?.user.role === 'buyer' ? html`<p><a href="#/cart">Go to your cart and check out →</a></p>` : null}
    <div class="grid">
      ${sale.items.map((item) => html`<${ItemCard} key=${item.id} sale=${sale} item=${item} price=${prices[item.productId]} remaining=${remainingOf(item)} status=${status} me=${me} />`)}
    </div>`;
}

function ItemCard({ sale, item, price, remaining, status, me }) {
  const [busy, setBusy] = useState(false);
  const [message, setMessage] = useState();
  // One key per buy action: a double click sends nothing more (the button is busy), and a retry of
  // the same action after a network failure reuses the key, so it cannot buy twice.
  const key = useRef(undefined);
  // Set at once, unlike `busy`, which a second click in the same frame would still see false.
  const inFlight = useRef(false);
  const soldOut = remaining <= 0;
  const cart = sale.holdMode === 'cart';
  async function buy() {
    if (inFlight.current) return;
    if (!me) {
      sessionStorage.setItem('flashsale.after-signin', location.hash);
      location.hash = '#/signin';
      return;
    }
    inFlight.current = true;
    setBusy(true);
    setMessage(undefined);
    key.current ??= newKey();
    try {
      if (cart) {
        await api('POST', '/v1/cart/items', { body: { saleItemId: item.id, quantity: 1 }, idempotencyKey: key.current });
        key.current = undefined;
        setMessage({ kind: 'ok', text: html`In your cart. <a href="#/cart">Check out</a> before the hold runs out.` });
      } else {
        const order = await api('POST', '/v1/orders', { body: { items: [{ saleItemId: item.id, quantity: 1 }] }, idempotencyKey: key.current });
        key.current = undefined;
        location.hash = `#/orders/${order.id}`;
      }
    } catch (error) {
      if (error.code !== 'network' && error.code !== 'idempotency_in_progress') key.current = undefined;
      setMessage({ kind: 'error', text: describeError(error) });
    } finally {
      inFlight.current = false;
      setBusy(false);
    }
  }
  const label = status === 'cancelled' ? 'Sale cancelled' : soldOut ? 'Sold out' : status === 'scheduled' ? 'Not open yet' : status === 'ended' ? 'Sale ended' : busy ? (cart ? 'Adding…' : 'Buying…') : cart ? 'Add to cart' : 'Buy now';
  const canBuy = status === 'active' && !soldOut && me?.user.role !== 'merchant' && me?.user.role !== 'admin';
  return html`
    <article class="card" data-item=${item.id}>
      <h3>${item.productName}</h3>
      <p><span class="price">${money(item.flashPrice, sale.currency)}</span>${price !== undefined && price > item.flashPrice ? html`<span class="was">${money(price, sale.currency)}</span>` : null}</p>
      <p class=${`stock${soldOut ? ' out' : ''}`} data-remaining=${remaining} aria-live="polite">${soldOut ? 'Sold out' : `${remaining} of ${item.stock} left`}</p>
      <p class="muted">Limit ${item.perUserLimit} per buyer</p>
      <button type="button" class="buy" onClick=${buy} disabled=${!canBuy || busy} aria-busy=${busy ? 'true' : 'false'} aria-label=${`${label}: ${item.productName}`}>${label}</button>
      ${message ? html`<${Notice} kind=${message.kind}>${message.text}<//>` : null}
    </article>`;
}

export function CartPage() {
  const [data, error, reload] = usePolling(() => api('GET', '/v1/cart'), 0);
  const [message, setMessage] = useState();
  const [busy, setBusy] = useState(false);
  const key = useRef(undefined);
  const now = useNow(1000);
  const names = useItemNames((data?.items ?? []).map((i) => i.saleId));
  async function checkout() {
    setBusy(true);
    setMessage(undefined);
    key.current ??= newKey();
    try {
      const { orders } = await api('POST', '/v1/checkout', { idempotencyKey: key.current });
      key.current = undefined;
      location.hash = orders.length === 1 ? `#/orders/${orders[0].id}` : '#/orders';
    } catch (error) {
      if (error.code !== 'network') key.current = undefined;
      setMessage(describeError(error));
      reload();
    } finally {
      setBusy(false);
    }
  }
  async function remove(holdId) {
    try {
      await api('DELETE', `/v1/cart/items/${holdId}`);
    } catch (error) {
      setMessage(describeError(error));
    }
    reload();
  }
  if (error && !data) return html`<${Notice} kind="error">${describeError(error)}<//>`;
  if (!data) return html`<p>Loading your cart…</p>`;
  const total = data.items.reduce((sum, i) => sum + i.unitPrice * i.quantity, 0);
  return html`
    <h1>Your cart</h1>
    ${data.items.length === 0 ? html`<p>Your cart is empty. <a href="#/">See the sales</a></p>` : html`
      <div class="table-wrap"><table>
        <thead><tr><th>Item</th><th class="num">Qty</th><th class="num">Price</th><th>Held for</th><th><span class="sr-only">Remove</span></th></tr></thead>
        <tbody>${data.items.map((i) => html`<tr key=${i.holdId}>
          <td><a href=${`#/sales/${i.saleId}`}>${names[i.saleItemId] ?? 'Item'}</a></td><td class="num">${i.quantity}</td><td class="num">${money(i.unitPrice, i.currency)}</td>
          <td class="countdown">${duration(Date.parse(i.expiresAt) - now)}</td>
          <td><button class="secondary" onClick=${() => remove(i.holdId)} aria-label="Remove from cart">Remove</button></td></tr>`)}</tbody>
      </table></div>
      <p class="row"><strong>Total ${money(total, data.items[0].currency)}</strong> <button onClick=${checkout} disabled=${busy}>${busy ? 'Checking out…' : 'Check out'}</button></p>`}
    <${Notice} kind="error">${message}<//>`;
}

const saleCache = new Map();
/** Sale item names by id, for the sales these ids belong to (each sale read once per page load). */
export function useItemNames(saleIds) {
  const [names, setNames] = useState({});
  const wanted = [...new Set(saleIds)].sort().join(',');
  useEffect(() => {
    let stopped = false;
    Promise.all(wanted.split(',').filter(Boolean).map((saleId) => {
      if (!saleCache.has(saleId)) saleCache.set(saleId, api('GET', `/v1/flash-sales/${saleId}`).catch(() => undefined));
      return saleCache.get(saleId);
    })).then((sales) => {
      if (stopped) return;
      const all = {};
      for (const sale of sales) for (const item of sale?.items ?? []) all[item.id] = item.productName;
      setNames(all);
    });
    return () => { stopped = true; };
  }, [wanted]);
  return names;
}
