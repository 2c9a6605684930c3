import { useEffect, useRef, useState } from 'preact/hooks';
import { api, describeError, duration, money, newKey, watchOrder } from './api.js';
import { useItemNames } from './shop.js';
import { Badge, html, Notice, useNow, usePolling } from './ui.js';

const OPEN = 'PENDING_PAYMENT';

export function OrdersPage() {
  const [data, error] = usePolling(() => api('GET', '/v1/orders?limit=50'), 5000);
  const names = useItemNames((data?.orders ?? []).map((o) => o.saleId));
  if (error && !data) return html`<${Notice} kind="error">${describeError(error)}<//>`;
  if (!data) return html`<p>Loading your orders…</p>`;
  return html`
    <h1>My orders</h1>
    ${data.orders.length === 0 ? html`<p>No orders yet. <a href="#/">See the sales</a></p>` : html`
      <div class="table-wrap"><table>
        <thead><tr><th>Order</th><th>Items</th><th>Status</th><th class="num">Total</th><th>Placed</th></tr></thead>
        <tbody>${data.orders.map((o) => html`<tr key=${o.id}>
          <td><a href=${`#/orders/${o.id}`}>${o.id.slice(0, 8)}</a></td>
          <td>${o.items.map((i) => `${i.quantity} × ${names[i.saleItemId] ?? 'item'}`).join(', ')}</td>
          <td><${Badge} value=${o.status} /></td><td class="num">${money(o.totalAmount, o.currency)}</td>
          <td>${new Date(o.createdAt).toLocaleString()}</td></tr>`)}</tbody>
      </table></div>`}`;
}

export function OrderPage({ id }) {
  const [order, setOrder] = useState();
  const [error, setError] = useState();
  // The status changes live: the server pushes the order when the webhook lands, the deadline
  // passes or a cancel goes through, whichever process saw it.
  useEffect(() => watchOrder(id, (o) => { setOrder(o); setError(undefined); }, setError), [id]);
  const reload = () => api('GET', `/v1/orders/${id}`).then(setOrder, setError);
  const [message, setMessage] = useState();
  const [busy, setBusy] = useState();
  const cancelKey = useRef(undefined);
  const payKey = useRef(undefined);
  const now = useNow(1000);
  const names = useItemNames(order ? [order.saleId] : []);

  async function pay() {
    setBusy('pay');
    setMessage(undefined);
    payKey.current ??= newKey();
    try {
      const returnUrl = `${location.origin}/#/orders/${id}`;
      const payment = await api('POST', `/v1/orders/${id}/payment`, { body: { returnUrl }, idempotencyKey: payKey.current });
      location.assign(payment.hostedUrl);
    } catch (error) {
      if (error.code !== 'network') payKey.current = undefined;
      setMessage(describeError(error));
      setBusy(undefined);
    }
  }
  async function cancel() {
    if (!confirm('Cancel this order? Its units go back on sale.')) return;
    setBusy('cancel');
    setMessage(undefined);
    cancelKey.current ??= newKey();
    try {
      setOrder(await api('POST', `/v1/orders/${id}/cancel`, { idempotencyKey: cancelKey.current }));
      cancelKey.current = undefined;
    } catch (error) {
      if (error.code !== 'network') cancelKey.current = undefined;
      setMessage(describeError(error));
      reload();
    } finally {
      setBusy(undefined);
    }
  }

  if (error && !order) return html`<${Notice} kind="error">${describeError(error)}<//>`;
  if (!order) return html`<p>Loading the order…</p>`;
  const left = Date.parse(order.expiresAt) - now;
  const open = order.status === OPEN;
  return html`
    <p><a href="#/orders">← My orders</a></p>
    <h1>Order ${order.id.slice(0, 8)}</h1>
    <p aria-live="polite">Status: <strong class="order-status" data-status=${order.status}><${Badge} value=${order.status} /></strong></p>
    ${open ? html`<p>Pay within <span class="countdown" data-countdown="deadline">${duration(left)}</span>, or the order expires and its units go back on sale.</p>` : null}
    ${order.status === 'PAID' ? html`<${Notice} kind="ok">Paid. Thank you! A confirmation is in your <a href="#/notifications">inbox</a>.<//>` : null}
    ${order.status === 'EXPIRED' ? html`<${Notice}>This order expired: it was not paid in time, and its units went back on sale.<//>` : null}
    ${order.status === 'CANCELLED' ? html`<${Notice}>This order was cancelled${order.closedReason ? ` (${order.closedReason})` : ''}.<//>` : null}
    <div class="table-wrap"><table>
      <thead><tr><th>Item</th><th class="num">Qty</th><th class="num">Unit price</th></tr></thead>
      <tbody>${order.items.map((i) => html`<tr key=${i.holdId}><td>${names[i.saleItemId] ?? 'Item'}</td><td class="num">${i.quantity}</td><td class="num">${money(i.unitPrice, order.currency)}</td></tr>`)}</tbody>
      <tfoot><tr><th>Total</th><td></td><td class="num"><strong>${money(order.totalAmount, order.currency)}</strong></td></tr></tfoot>
    </table></div>
    ${open ? html`<p class="row">
      <button onClick=${pay} disabled=${busy !== undefined || left <= 0}>${busy === 'pay' ? 'Opening the payment page…' : `Pay ${money(order.totalAmount, order.currency)}`}</button>
      <button class="danger" onClick=${cancel} disabled=${busy !== undefined}>${busy === 'cancel' ? 'Cancelling…' : 'Cancel order'}</button>
    </p>` : null}
    <${Notice} kind="error">${message}<//>
    <p class="muted">Placed ${new Date(order.createdAt).toLocaleString()} · last change ${new Date(order.updatedAt).toLocaleString()}</p>`;
}

export function NotificationsPage() {
  const [data, error] = usePolling(() => api('GET', '/v1/notifications?limit=50'), 3000);
  if (error && !data) return html`<${Notice} kind="error">${describeError(error)}<//>`;
  if (!data) return html`<p>Loading your inbox…</p>`;
  const inApp = data.notifications.filter((n) => n.channel === 'in_app');
  return html`
    <h1>Inbox</h1>
    ${inApp.length === 0 ? html`<p>Nothing yet.</p>` : html`<ul class="grid" style="list-style:none;padding:0">${inApp.map((n) => html`
      <li class="card" key=${n.id}><h3>${n.subject}</h3><p>${n.body}</p><p class="muted">${new Date(n.createdAt).toLocaleString()}${n.orderId ? html` · <a href=${`#/orders/${n.orderId}`}>the order</a>` : null}</p></li>`)}</ul>`}`;
}
