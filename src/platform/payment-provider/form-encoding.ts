export type Form = Record<string, string | number | Record<string, string | number>>;

/** Stripe's form encoding: nested objects as `metadata[order_id]=…`. */
export function encodeForm(form: Form): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(form)) {
    if (typeof value === 'object') for (const [sub, v] of Object.entries(value)) params.append(`${key}[${sub}]`, String(v));
    else params.append(key, String(value));
  }
  return params.toString();
}
