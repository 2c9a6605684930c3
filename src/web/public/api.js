// The one way the pages reach the server: the public API, with the session's token as a bearer
// header. No cookie is ever set or sent (credentials: 'omit'), so another site cannot make the
// browser act for the buyer (docs/decisions.md).

// The browser's own EventSource cannot send a bearer header: this one (the `eventsource` package)
// takes the request from our fetch, and reconnects as the browser's does.
import { EventSource as BearerEventSource } from 'eventsource';

const SESSION_KEY = 'flashsale.session';
const listeners = new Set();

export const session = {
  get() {
    try {
      return JSON.parse(localStorage.getItem(SESSION_KEY) ?? 'null');
    } catch {
      return null;
    }
  },
  set(value) {
    if (value) localStorage.setItem(SESSION_KEY, JSON.stringify(value));
    else localStorage.removeItem(SESSION_KEY);
    for (const listener of listeners) listener(value);
  },
  subscribe(listener) {
    listeners.add(listener);
    return () => listeners.delete(listener);
  },
};

export class ApiError extends Error {
  constructor(status, code, message, retryAfterS) {
    super(message);
    this.status = status;
    this.code = code;
    this.retryAfterS = retryAfterS;
  }
}

/** A fresh Idempotency-Key: one per buyer action, reused only by a retry of that action. */
export const newKey = () => crypto.randomUUID();

export async function api(method, path, { body, idempotencyKey, token } = {}) {
  const headers = { accept: 'application/json' };
  const bearer = token ?? session.get()?.token;
  if (bearer) headers.authorization = `Bearer ${bearer}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (idempotencyKey) headers['idempotency-key'] = idempotencyKey;
  let res;
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: 'omit', cache: 'no-store' });
  } catch {
    throw new ApiError(0, 'network', 'The shop cannot be reached. Check your connection and try again.');
  }
  const text = await res.text();
  let data;
  try {
    data = text ? JSON.parse(text) : undefined;
  } catch {
    data = text;
  }
  if (res.ok) return data;
  const retryAfter = Number(res.headers.get('retry-after'));
  const error = data?.error ?? {};
  // A report (the audit's 409) is data, not an error message.
  if (!data?.error && data && typeof data === 'object') return data;
  if (res.status === 401 && bearer && !path.startsWith('/v1/auth/')) session.set(null);
  throw new ApiError(res.status, error.code ?? `http_${res.status}`, error.message ?? res.statusText, Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter : undefined);
}

/** Every refusal a buyer can meet, in words. */
export function describeError(error) {
  if (!(error instanceof ApiError)) return String(error?.message ?? error);
  const wait = error.retryAfterS ? ` Try again in ${error.retryAfterS} s.` : ' Try again in a moment.';
  switch (error.code) {
    case 'sold_out': return 'Sold out: every unit has been taken.';
    case 'limit_exceeded': return 'You already have as many as one buyer may get of this item.';
    case 'sale_not_active': return 'The sale is not open: it has not started yet, or it has ended.';
    case 'hold_mode_mismatch': return 'This sale works with a cart: add the item to your cart, then check out.';
    case 'rate_limited': return `Too many requests from you.${wait}`;
    case 'overloaded':
    case 'unavailable': return `The shop is very busy right now.${wait}`;
    case 'payment_unavailable': return `The payment provider cannot be reached.${wait}`;
    case 'payment_window_closed': return 'The time to pay for this order is over.';
    case 'invalid_state': return `This order can no longer do that: ${error.message}`;
    case 'cart_empty': return 'Your cart is empty.';
    case 'unauthorized': return 'Please sign in (again).';
    case 'forbidden': return 'Your account may not do this.';
    case 'invalid_credentials': return 'Email or password is wrong.';
    case 'email_taken': return 'That email already has an account: sign in instead.';
    case 'idempotency_in_progress': return 'Your previous click is still being processed.';
    case 'validation_failed': return `Please check the form: ${error.message}`;
    default: return error.message || 'Something went wrong.';
  }
}

export function money(amount, currency) {
  try {
    const format = new Intl.NumberFormat(undefined, { style: 'currency', currency });
    return format.format(amount / 10 ** (format.resolvedOptions().maximumFractionDigits ?? 2));
  } catch {
    return `${amount} ${currency}`;
  }
}

/** `1:02:03`, `4:05`; days when long. */
export function duration(ms) {
  const total = Math.max(0, Math.ceil(ms / 1000));
  const d = Math.floor(total / 86400);
  const h = Math.floor((total % 86400) / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const pad = (n) => String(n).padStart(2, '0');
  if (d > 0) return `${d}d ${h}h ${pad(m)}m`;
  return h > 0 ? `${h}:${pad(m)}:${pad(s)}` : `${m}:${pad(s)}`;
}

/**
 * Watches a sale's live stock (server-sent events from the gate's counters). The browser's
 * EventSource reconnects by itself; when the server refuses a stream (503, too many open), it
 * falls back to asking for the JSON snapshot every 2 s.
 */
export function watchSale(saleId, onSnapshot) {
  const url = `/v1/flash-sales/${saleId}/live`;
  return watchStream(new EventSource(url), 'stock', EventSource.CLOSED, () => api('GET', url), onSnapshot);
}

/**
 * Watches one of the buyer's orders: `onOrder` gets it at once and whenever its status changes
 * (server-sent events, `GET /v1/orders/{id}/live`, each (re)connection with the session's current
 * token). When the server refuses the stream for good (503: too many open; 401), it falls back to
 * asking for the order every 2 s.
 */
export function watchOrder(orderId, onOrder, onError) {
  const source = new BearerEventSource(`/v1/orders/${orderId}/live`, {
    fetch: (input, init) => fetch(input, { ...init, credentials: 'omit', headers: { ...init.headers, authorization: `Bearer ${session.get()?.token ?? ''}` } }),
  });
  return watchStream(source, 'order', BearerEventSource.CLOSED, () => api('GET', `/v1/orders/${orderId}`), onOrder, onError);
}

/**
 * `onData` gets each `eventName` event of `source`; once the source gives up (readyState `closed`),
 * `ask` every 2 s instead — until a 401, 403 or 404, whose answer asking again would not change.
 * Returns the function that stops watching.
 */
function watchStream(source, eventName, closedState, ask, onData, onError) {
  let stopped = false;
  let timer;
  source.addEventListener(eventName, (event) => onData(JSON.parse(event.data)));
  source.onerror = () => {
    if (source.readyState !== closedState || stopped) return;
    const poll = async () => {
      if (stopped) return;
      try {
        onData(await ask());
      } catch (error) {
        onError?.(error);
        if ([401, 403, 404].includes(error.status)) return;
      }
      timer = setTimeout(poll, 2000);
    };
    void poll();
  };
  return () => {
    stopped = true;
    clearTimeout(timer);
    source.close();
  };
}
