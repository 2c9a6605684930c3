import { h } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import htm from 'htm';

export const html = htm.bind(h);

/** The time now, re-rendering every `ms`. `offsetMs` is the server's clock minus this browser's. */
export function useNow(ms = 1000, offsetMs = 0) {
  const [now, setNow] = useState(() => Date.now() + offsetMs);
  useEffect(() => {
    setNow(Date.now() + offsetMs);
    const timer = setInterval(() => setNow(Date.now() + offsetMs), ms);
    return () => clearInterval(timer);
  }, [ms, offsetMs]);
  return now;
}

/** Runs `load` now and every `ms` while mounted (and `enabled`); returns [data, error, reload]. */
export function usePolling(load, ms, deps = [], enabled = true) {
  const [state, setState] = useState({ data: undefined, error: undefined });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let stopped = false;
    let timer;
    const run = async () => {
      try {
        const data = await load();
        if (!stopped) setState({ data, error: undefined });
      } catch (error) {
        if (!stopped) setState((s) => ({ data: s.data, error }));
      }
      if (!stopped && enabled && ms > 0) timer = setTimeout(run, ms);
    };
    void run();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, [...deps, tick, enabled]);
  return [state.data, state.error, () => setTick((t) => t + 1)];
}

/** A message for the user; errors are announced to screen readers at once. */
export function Notice({ kind = 'info', children }) {
  if (!children) return null;
  return html`<p class=${`notice ${kind}`} role=${kind === 'error' ? 'alert' : 'status'}>${children}</p>`;
}

export function Badge({ value }) {
  const words = { PENDING_PAYMENT: 'awaiting payment', PAID: 'paid', FULFILLED: 'fulfilled', CANCELLED: 'cancelled', EXPIRED: 'expired', scheduled: 'upcoming', active: 'open now', ended: 'ended', cancelled: 'cancelled' };
  return html`<span class=${`badge ${value}`} data-status=${value}>${words[value] ?? value}</span>`;
}
