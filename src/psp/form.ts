import { PspError } from './errors.ts';

/**
 * Parses an `application/x-www-form-urlencoded` body with the bracket notation Stripe's SDKs use:
 * `metadata[order_id]=o1` → `{ metadata: { order_id: 'o1' } }`, `expand[]=a&expand[]=b` → `{ expand: ['a', 'b'] }`,
 * `items[0][price]=p` → `{ items: [{ price: 'p' }] }`. Values stay strings; each route converts its own.
 * A malformed key drops its pair; a body beyond FORM_LIMITS is refused with a 400.
 */
export type FormValue = string | FormValue[] | { [key: string]: FormValue };
export type FormObject = { [key: string]: FormValue };
type Container = FormObject | FormValue[];

/**
 * Beyond these a body is refused (400 parameter_invalid) before any nesting is built, so the work
 * stays linear in the body size. Stripe's own deepest parameters (`items[0][price_data][product_data][metadata][k]`)
 * are 5 levels; its keys are short.
 */
export const FORM_LIMITS = { maxDepth: 5, maxPairs: 1000, maxKeyLength: 256 } as const;
/** The largest array index honoured; higher ones drop their pair (a sparse array of millions is not a parameter). */
const MAX_INDEX = 1000;
const FORBIDDEN = new Set(['__proto__', 'constructor', 'prototype']);

export function parseForm(text: string): FormObject {
  const root: FormObject = {};
  let pairs = 0;
  for (const [name, value] of new URLSearchParams(text)) {
    if (++pairs > FORM_LIMITS.maxPairs) throw formLimit(`A request can have at most ${FORM_LIMITS.maxPairs} parameters.`);
    if (name.length > FORM_LIMITS.maxKeyLength) {
      throw formLimit(`Parameter names can be at most ${FORM_LIMITS.maxKeyLength} characters: ${preview(name)}`, name);
    }
    const path = keyPath(name);
    if (!path || path.some((p) => FORBIDDEN.has(p))) continue;
    assign(root, path, value);
  }
  return root;
}

/**
 * Refuses a parsed JSON body nested deeper than a form body may be: deeper values only break
 * what walks them recursively later (JSON.stringify of the idempotency hash overflowed: a 500).
 * Iterative, so the check itself cannot overflow.
 */
export function assertNestingWithinLimit(value: unknown): void {
  const pending: Array<[unknown, number]> = [[value, 0]];
  for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
    const [item, depth] = next;
    if (typeof item !== 'object' || item === null) continue;
    if (depth > FORM_LIMITS.maxDepth) throw formLimit(`Parameters are nested too deep: at most ${FORM_LIMITS.maxDepth} levels of objects and arrays.`);
    for (const child of Object.values(item)) pending.push([child, depth + 1]);
  }
}

/**
 * `a[b][]` → `['a', 'b', '']`; undefined when malformed. One left-to-right pass (no regex
 * backtracking), stopping at the depth limit rather than reading the rest.
 */
function keyPath(name: string): string[] | undefined {
  const open = name.indexOf('[');
  const head = open < 0 ? name : name.slice(0, open);
  if (head === '' || head.includes(']')) return undefined;
  const path = [head];
  for (let at = open; at >= 0 && at < name.length;) {
    if (name[at] !== '[') return undefined;
    const close = name.indexOf(']', at + 1);
    if (close < 0) return undefined;
    const segment = name.slice(at + 1, close);
    if (segment.includes('[')) return undefined;
    if (path.length > FORM_LIMITS.maxDepth) {
      throw formLimit(`Parameter ${preview(name)} is nested too deep: at most ${FORM_LIMITS.maxDepth} levels of brackets.`, name);
    }
    path.push(segment);
    at = close + 1;
  }
  return path;
}

/** Walks (and makes) the containers along `path`, iteratively: no recursion, no copies of the path. */
function assign(root: FormObject, path: readonly string[], value: string): void {
  let container: Container = root;
  for (const [i, segment] of path.entries()) {
    const slot = slotOf(container, segment);
    if (slot === undefined) return;
    const nextSegment = path[i + 1];
    if (nextSegment === undefined) {
      setSlot(container, slot, value);
      return;
    }
    const existing = getSlot(container, slot);
    const child = typeof existing === 'object' ? existing : newContainer(nextSegment);
    setSlot(container, slot, child);
    container = child;
  }
}

/** Where a segment lands: an array index (`''` appends) or an object key; undefined drops the pair. */
function slotOf(container: Container, segment: string): number | string | undefined {
  if (!Array.isArray(container)) return segment === '' ? undefined : segment;
  if (segment === '') return container.length;
  if (!/^\d{1,4}$/.test(segment)) return undefined;
  const index = Number(segment);
  return index > MAX_INDEX ? undefined : index;
}

function getSlot(container: Container, slot: number | string): FormValue | undefined {
  return Array.isArray(container) ? container[Number(slot)] : container[String(slot)];
}

function setSlot(container: Container, slot: number | string, value: FormValue): void {
  if (Array.isArray(container)) container[Number(slot)] = value;
  else container[String(slot)] = value;
}

function newContainer(nextSegment: string): Container {
  return nextSegment === '' || /^\d+$/.test(nextSegment) ? [] : {};
}

function formLimit(message: string, name?: string): PspError {
  return new PspError(400, 'invalid_request_error', message, 'parameter_invalid', name === undefined ? undefined : name.slice(0, 40));
}

/** A key as an error message shows it: the first 40 characters of a long one. */
function preview(name: string): string {
  return name.length <= 40 ? `'${name}'` : `'${name.slice(0, 40)}…' (${name.length} characters)`;
}
