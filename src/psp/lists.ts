import type { Params } from './params.ts';

/**
 * Stripe's list shape `{ object: 'list', url, has_more, data }`, newest first: `limit` (clamped to
 * 1–100, default 10) and `starting_after` (the last id of the previous page; an unknown one lists
 * nothing). The store keeps items in creation order (a Map keeps a key's first position on update).
 */
export function listNewestFirst<T extends { id: string }>(url: string, oldestFirst: Iterable<T>, params: Params, matches: (item: T) => boolean = () => true) {
  const limitText = params.limit;
  const limit = typeof limitText === 'string' && /^\d+$/.test(limitText) ? Math.min(100, Math.max(1, Number(limitText))) : 10;
  let newest = [...oldestFirst].reverse().filter(matches);
  if (typeof params.starting_after === 'string') {
    const at = newest.findIndex((item) => item.id === params.starting_after);
    newest = at < 0 ? [] : newest.slice(at + 1);
  }
  return { object: 'list', url, has_more: newest.length > limit, data: newest.slice(0, limit) };
}

/** A list filter from a query parameter (`?type=…`): items whose field equals it, or all when it is absent. */
export function whereParam<T>(params: Params, name: string, field: (item: T) => string): (item: T) => boolean {
  const wanted = params[name];
  return typeof wanted === 'string' ? (item) => field(item) === wanted : () => true;
}
