import type { IntentObject } from './state.ts';

const escape = (text: string) =>
  text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

/** `1234` `usd` → `$12.34`; `500` `jpy` → `¥500` (the currency's own minor-unit exponent). */
export function formatAmount(amount: number, currency: string): string {
  try {
    const format = new Intl.NumberFormat('en', { style: 'currency', currency: currency.toUpperCase() });
    return format.format(amount / 10 ** (format.resolvedOptions().maximumFractionDigits ?? 2));
  } catch {
    return `${amount} ${currency.toUpperCase()} (minor units)`;
  }
}

export type PageResult = 'succeeded' | 'declined' | 'unchanged' | undefined;

/** The hosted payment page: the amount, the state, and Pay / Decline buttons while the intent is payable. */
export function hostedPage(intent: IntentObject, result: PageResult): string {
  const payable = intent.status === 'requires_payment_method' || intent.status === 'requires_confirmation';
  const orderId = intent.metadata.order_id;
  const notice =
    result === 'succeeded' ? '<p class="ok">Payment succeeded. Thank you!</p>'
    : result === 'declined' ? `<p class="bad">Payment declined: ${escape(intent.last_payment_error?.message ?? 'Your card was declined.')}</p>`
    : result === 'unchanged' ? `<p class="bad">Nothing to do: this payment is ${escape(intent.status)}.</p>`
    : '';
  const state =
    intent.status === 'succeeded' ? '<p class="ok">Paid.</p>'
    : intent.status === 'canceled' ? '<p class="bad">This payment was canceled.</p>'
    : '';
  const buttons = payable
    ? `<div class="buttons">
  <form method="post" action="/pay/${escape(intent.id)}/pay"><button type="submit" class="pay">Pay ${escape(formatAmount(intent.amount, intent.currency))}</button></form>
  <form method="post" action="/pay/${escape(intent.id)}/decline"><button type="submit" class="decline">Decline</button></form>
</div>`
    : '';
  const back = intent.next_action?.redirect_to_url.return_url ?? null;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Pay ${escape(formatAmount(intent.amount, intent.currency))} — flashsale PSP simulator</title>
<style>
  body { font-family: system-ui, sans-serif; max-width: 28rem; margin: 3rem auto; padding: 0 1rem; color: #222; }
  .amount { font-size: 2.5rem; margin: .5rem 0; }
  .meta { color: #666; font-size: .9rem; }
  .buttons { display: flex; gap: .75rem; margin-top: 1.5rem; }
  button { font-size: 1.1rem; padding: .6rem 1.4rem; border-radius: .4rem; border: 1px solid #888; cursor: pointer; }
  .pay { background: #1a7f37; color: white; border-color: #1a7f37; }
  .decline { background: white; color: #b42318; border-color: #b42318; }
  .ok { color: #1a7f37; font-weight: 600; }
  .bad { color: #b42318; font-weight: 600; }
</style>
</head>
<body>
<p class="meta">flashsale payment simulator — test mode, no real money moves</p>
<h1 class="amount" data-amount="${intent.amount}" data-currency="${escape(intent.currency)}">${escape(formatAmount(intent.amount, intent.currency))}</h1>
<p class="meta">Payment <code>${escape(intent.id)}</code>${orderId ? ` for order <code>${escape(orderId)}</code>` : ''} — status <strong data-status="${escape(intent.status)}">${escape(intent.status)}</strong></p>
${notice}
${state}
${buttons}
${back && !payable ? `<p><a href="${escape(back)}">Return to the shop</a></p>` : ''}
</body>
</html>
`;
}

export function notFoundPage(id: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Not found</title></head><body><p>No such payment: <code>${escape(id)}</code></p></body></html>\n`;
}

/** The answer to a Pay or Decline posted from another site. */
export function crossSitePage(): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Forbidden</title></head><body><p>This payment page only accepts its own Pay and Decline buttons: this request came from another site. Open the payment page and press the button there.</p></body></html>\n`;
}
