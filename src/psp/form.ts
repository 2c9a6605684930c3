/**
 * Parses an `application/x-www-form-urlencoded` body with the bracket notation Stripe's SDKs use:
 * `metadata[order_id]=o1` → `{ metadata: { order_id: 'o1' } }`, `expand[]=a&expand[]=b` → `{ expand: ['a', 'b'] }`,
 * `items[0][price]=p` → `{ items: [{ price: 'p' }] }`. Values stay strings; each route converts its own.
 */
export type FormValue = string | FormValue[] | { [key: string]: FormValue };
export type FormObject = { [key: string]: FormValue };

const FORBIDDEN = new Set(['__proto__', 'constructor', 'prototype']);
const KEY = /^([^[\]]+)((?:\[[^[\]]*\])*)$/;

export function parseForm(text: string): FormObject {
  const root: FormObject = {};
  for (const [name, value] of new URLSearchParams(text)) {
    const match = KEY.exec(name);
    if (!match) continue;
    const path = [match[1]!, ...[...match[2]!.matchAll(/\[([^[\]]*)\]/g)].map((m) => m[1]!)];
    if (path.some((p) => FORBIDDEN.has(p))) continue;
    assign(root, path, value);
  }
  return root;
}

function assign(container: FormObject | FormValue[], path: string[], value: string): void {
  const [head, ...rest] = path as [string, ...string[]];
  if (Array.isArray(container)) {
    const index = head === '' ? container.length : Number(head);
    if (index > 1000) return;
    if (rest.length === 0) {
      container[index] = value;
      return;
    }
    const next = container[index];
    const child = typeof next === 'object' ? next : (container[index] = newContainer(rest[0]!));
    assign(child, rest, value);
    return;
  }
  if (head === '') return;
  if (rest.length === 0) {
    container[head] = value;
    return;
  }
  const next = container[head];
  const child = typeof next === 'object' ? next : (container[head] = newContainer(rest[0]!));
  assign(child, rest, value);
}

function newContainer(nextKey: string): FormObject | FormValue[] {
  return nextKey === '' || /^\d+$/.test(nextKey) ? [] : {};
}
