import { useState } from 'preact/hooks';
import { api, describeError, money, newKey, session } from './api.js';
import { Badge, html, Notice, usePolling } from './ui.js';

const digits = (currency) => {
  try {
    return new Intl.NumberFormat('en', { style: 'currency', currency }).resolvedOptions().maximumFractionDigits ?? 2;
  } catch {
    return 2;
  }
};
/** "19.99" USD → 1999 minor units. */
const toMinor = (text, currency) => Math.round(Number(text) * 10 ** digits(currency));
/** A datetime-local value for a moment `ms` from now, in this browser's zone. */
const localInput = (ms) => {
  const d = new Date(Date.now() + ms);
  d.setSeconds(0, 0);
  return new Date(d.getTime() - d.getTimezoneOffset() * 60_000).toISOString().slice(0, 16);
};

export function MerchantPage({ me }) {
  const shop = me.shop;
  const [products, productsError, reloadProducts] = usePolling(() => api('GET', `/v1/products?shopId=${shop.id}&limit=100`), 0, [shop?.id], Boolean(shop));
  const [sales, , reloadSales] = usePolling(() => api('GET', `/v1/flash-sales?shopId=${shop.id}&limit=100`), 3000, [shop?.id], Boolean(shop));
  if (!shop) return html`<${Notice} kind="error">This merchant account has no shop.<//>`;
  return html`
    <h1>${shop.name}</h1>
    <h2>Your sales</h2>
    <${SalesTable} sales=${sales?.sales} onChanged=${reloadSales} />
    <h2>Schedule a sale</h2>
    <${SaleForm} products=${products?.products ?? []} onCreated=${reloadSales} />
    <${ShopOrders} />
    <h2>Your products</h2>
    ${productsError ? html`<${Notice} kind="error">${describeError(productsError)}<//>` : null}
    ${products?.products.length ? html`<div class="table-wrap"><table>
      <thead><tr><th>Product</th><th class="num">List price</th></tr></thead>
      <tbody>${products.products.map((p) => html`<tr key=${p.id}><td>${p.name}</td><td class="num">${money(p.price, p.currency)}</td></tr>`)}</tbody>
    </table></div>` : html`<p>No products yet: create one below, then put it on sale.</p>`}
    <h2>Create a product</h2>
    <${ProductForm} onCreated=${reloadProducts} />`;
}

function SalesTable({ sales, onChanged }) {
  const [message, setMessage] = useState();
  if (!sales) return html`<p>Loading your sales…</p>`;
  if (sales.length === 0) return html`<p>No sales yet.</p>`;
  async function act(run, done) {
    setMessage(undefined);
    try {
      await run();
      setMessage({ kind: 'ok', text: done });
      onChanged();
    } catch (error) {
      setMessage({ kind: 'error', text: describeError(error) });
    }
  }
  const cancel = (s) => confirm(`Cancel ${s.name}? Nobody can buy from it any more, and its unpaid orders are closed.`)
    && act(() => api('POST', `/v1/flash-sales/${s.id}/cancel`, { idempotencyKey: newKey() }), `Cancelled ${s.name}.`);
  const restock = (s, item) => {
    const quantity = Number(prompt(`Units to add to ${item.productName}:`, '10'));
    if (!Number.isInteger(quantity) || quantity < 1) return;
    void act(() => api('POST', `/v1/flash-sales/${s.id}/items/${item.id}/stock`, { body: { quantity }, idempotencyKey: newKey() }), `Added ${quantity} to ${item.productName}.`);
  };
  const open = (s) => s.status === 'scheduled' || s.status === 'active';
  return html`<div class="table-wrap"><table>
    <thead><tr><th>Sale</th><th>Status</th><th>Starts</th><th>Items: taken / stock</th><th><span class="sr-only">Actions</span></th></tr></thead>
    <tbody>${sales.map((s) => html`<tr key=${s.id}>
      <td><a href=${`#/sales/${s.id}`}>${s.name}</a></td><td><${Badge} value=${s.status} /></td>
      <td>${new Date(s.startsAt).toLocaleString()}</td>
      <td>${s.items.map((i) => html`<div key=${i.id}>${i.productName}: ${i.stock - i.remaining} / ${i.stock}
        ${open(s) ? html` <button class="secondary" style="min-height:0;padding:.1rem .5rem" onClick=${() => restock(s, i)} aria-label=${`Add stock to ${i.productName} in ${s.name}`}>+ stock</button>` : null}</div>`)}</td>
      <td>${open(s) ? html`<button class="danger" onClick=${() => cancel(s)} aria-label=${`Cancel sale ${s.name}`}>Cancel sale</button>` : null}</td></tr>`)}</tbody>
  </table></div>
  ${message ? html`<${Notice} kind=${message.kind}>${message.text}<//>` : null}
  <p class="muted">Taken = held by buyers or sold, live from the stock counters. Open a sale to watch it.</p>`;
}

function ProductForm({ onCreated }) {
  const [form, setForm] = useState({ name: '', description: '', price: '', currency: 'USD' });
  const [message, setMessage] = useState();
  const set = (field) => (e) => setForm({ ...form, [field]: e.currentTarget.value });
  async function submit(event) {
    event.preventDefault();
    setMessage(undefined);
    try {
      const product = await api('POST', '/v1/products', {
        body: { name: form.name, description: form.description, price: toMinor(form.price, form.currency), currency: form.currency },
        idempotencyKey: newKey(),
      });
      setMessage({ kind: 'ok', text: `Created ${product.name}.` });
      setForm({ ...form, name: '', description: '', price: '' });
      onCreated();
    } catch (error) {
      setMessage({ kind: 'error', text: describeError(error) });
    }
  }
  return html`<form class="stack" onSubmit=${submit}>
    <label>Name<input name="product-name" required maxlength="200" value=${form.name} onInput=${set('name')} /></label>
    <label>Description<input name="product-description" maxlength="5000" value=${form.description} onInput=${set('description')} /></label>
    <div class="row">
      <label style="flex:1">List price<input name="product-price" type="number" min="0" step="0.01" inputmode="decimal" required value=${form.price} onInput=${set('price')} /></label>
      <label>Currency<input name="product-currency" required pattern="[A-Z]{3}" maxlength="3" size="4" value=${form.currency} onInput=${(e) => setForm({ ...form, currency: e.currentTarget.value.toUpperCase() })} /></label>
    </div>
    <div><button type="submit">Create product</button></div>
    ${message ? html`<${Notice} kind=${message.kind}>${message.text}<//>` : null}
  </form>`;
}

function SaleForm({ products, onCreated }) {
  const [form, setForm] = useState({ name: '', startsAt: localInput(5 * 60_000), durationMin: '60', paymentWindowMin: '15', holdMode: 'order' });
  const [lines, setLines] = useState({});
  const [message, setMessage] = useState();
  const [busy, setBusy] = useState(false);
  const set = (field) => (e) => setForm({ ...form, [field]: e.currentTarget.value });
  const setLine = (productId, field, value) => setLines({ ...lines, [productId]: { flashPrice: '', stock: '10', perUserLimit: '1', ...lines[productId], [field]: value } });
  async function submit(event) {
    event.preventDefault();
    setMessage(undefined);
    const chosen = products.filter((p) => lines[p.id]?.on);
    if (chosen.length === 0) return setMessage({ kind: 'error', text: 'Choose at least one product for the sale.' });
    const startsAt = new Date(form.startsAt);
    setBusy(true);
    try {
      const sale = await api('POST', '/v1/flash-sales', {
        idempotencyKey: newKey(),
        body: {
          name: form.name,
          startsAt: startsAt.toISOString(),
          endsAt: new Date(startsAt.getTime() + Number(form.durationMin) * 60_000).toISOString(),
          paymentWindowS: Math.round(Number(form.paymentWindowMin) * 60),
          holdMode: form.holdMode,
          items: chosen.map((p) => ({
            productId: p.id, flashPrice: toMinor(lines[p.id].flashPrice || '0', p.currency),
            stock: Number(lines[p.id].stock), perUserLimit: Number(lines[p.id].perUserLimit),
          })),
        },
      });
      setMessage({ kind: 'ok', text: html`Scheduled <a href=${`#/sales/${sale.id}`}>${sale.name}</a>.` });
      setLines({});
      setForm({ ...form, name: '' });
      onCreated();
    } catch (error) {
      setMessage({ kind: 'error', text: describeError(error) });
    } finally {
      setBusy(false);
    }
  }
  if (products.length === 0) return html`<p class="muted">Create a product first.</p>`;
  return html`<form class="stack" onSubmit=${submit} style="max-width:40rem">
    <label>Sale name<input name="sale-name" required maxlength="200" value=${form.name} onInput=${set('name')} /></label>
    <div class="row">
      <label style="flex:2">Starts at (your time)<input name="sale-starts" type="datetime-local" required value=${form.startsAt} onInput=${set('startsAt')} /></label>
      <label style="flex:1">Runs for (minutes)<input name="sale-duration" type="number" min="1" required value=${form.durationMin} onInput=${set('durationMin')} /></label>
    </div>
    <div class="row">
      <label style="flex:1">Time to pay (minutes)<input name="sale-window" type="number" min="1" max="10080" step="any" required value=${form.paymentWindowMin} onInput=${set('paymentWindowMin')} /></label>
      <label style="flex:1">Stock is held
        <select name="sale-hold-mode" value=${form.holdMode} onChange=${set('holdMode')}>
          <option value="order">when the buyer orders (buy now)</option>
          <option value="cart">when the buyer adds to the cart</option>
        </select></label>
    </div>
    ${products.map((p) => {
      const line = lines[p.id] ?? {};
      return html`<fieldset key=${p.id}>
        <legend><label style="display:flex;gap:.5rem;align-items:center"><input type="checkbox" name=${`line-${p.id}`} style="width:auto;min-height:0" checked=${Boolean(line.on)} onChange=${(e) => setLine(p.id, 'on', e.currentTarget.checked)} /> ${p.name} (list ${money(p.price, p.currency)})</label></legend>
        ${line.on ? html`<div class="row">
          <label style="flex:1">Flash price<input name="line-price" type="number" min="0" step="0.01" required value=${line.flashPrice} onInput=${(e) => setLine(p.id, 'flashPrice', e.currentTarget.value)} /></label>
          <label style="flex:1">Stock<input name="line-stock" type="number" min="1" required value=${line.stock} onInput=${(e) => setLine(p.id, 'stock', e.currentTarget.value)} /></label>
          <label style="flex:1">Limit per buyer<input name="line-limit" type="number" min="1" max="1000" required value=${line.perUserLimit} onInput=${(e) => setLine(p.id, 'perUserLimit', e.currentTarget.value)} /></label>
        </div>` : null}
      </fieldset>`;
    })}
    <div><button type="submit" disabled=${busy}>Schedule sale</button></div>
    ${message ? html`<${Notice} kind=${message.kind}>${message.text}<//>` : null}
  </form>`;
}

/** The shop's orders (`GET /v1/shop/orders`, from the fulfillment component); hidden where that API is absent. */
function ShopOrders() {
  const [data, error] = usePolling(() => api('GET', '/v1/shop/orders?limit=20'), 5000);
  const [message, setMessage] = useState();
  if (error?.code === 'route_not_found') return null;
  async function download() {
    try {
      const res = await fetch('/v1/shop/orders/export', { headers: { authorization: `Bearer ${session.get()?.token}` }, credentials: 'omit' });
      if (!res.ok) throw new Error(`The export failed (${res.status}).`);
      const link = document.createElement('a');
      link.href = URL.createObjectURL(await res.blob());
      link.download = 'orders.csv';
      link.click();
      URL.revokeObjectURL(link.href);
    } catch (e) {
      setMessage(describeError(e));
    }
  }
  return html`
    <h2>Your orders</h2>
    ${error ? html`<${Notice} kind="error">${describeError(error)}<//>` : null}
    ${!data ? html`<p>Loading your orders…</p>` : data.orders.length === 0 ? html`<p>No orders yet.</p>` : html`
      <p class="muted">${data.total} order(s)${data.totals.map((t) => ` · ${t.units} unit(s), ${money(t.amount, t.currency)}`).join('')}</p>
      <div class="table-wrap"><table>
        <thead><tr><th>Order</th><th>Status</th><th class="num">Units</th><th class="num">Total</th><th>Placed</th></tr></thead>
        <tbody>${data.orders.map((o) => html`<tr key=${o.id}><td><code>${o.id.slice(0, 8)}</code></td><td><${Badge} value=${o.status} /></td>
          <td class="num">${o.items.reduce((n, i) => n + i.quantity, 0)}</td><td class="num">${money(o.totalAmount, o.currency)}</td><td>${new Date(o.createdAt).toLocaleString()}</td></tr>`)}</tbody>
      </table></div>
      <p><button class="secondary" onClick=${download}>Download all as CSV</button></p>`}
    <${Notice} kind="error">${message}<//>`;
}
