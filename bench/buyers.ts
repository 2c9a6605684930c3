/**
 * What the benchmark's lifecycle run and the chaos drill do as buyers after a rush: plain HTTP
 * calls, a bounded number at a time, and the one split of the winners both use.
 */

export interface Answer {
  status: number;
  /** The JSON body; `{}` when there is none (the hosted page answers a redirect or HTML). */
  json: Record<string, unknown>;
  /** Where a redirect points (the hosted page's Pay answers 303 to `?result=…`). */
  location?: string;
}

/**
 * Whether pressing Pay on the hosted page took the money. The page redirects to `?result=succeeded`,
 * `declined` or `unchanged`; the last is a Pay on an intent already voided (its order was closed
 * first: expired, cancelled, its sale cancelled), which takes nothing.
 */
export function payTaken(hosted: Answer): boolean {
  return hosted.status === 303 && hosted.location !== undefined && new URL(hosted.location, 'http://x').searchParams.get('result') === 'succeeded';
}

/** A POST as a buyer (`token`) or anonymously, with an optional JSON body; redirects are not followed. */
export async function post(url: string, token?: string, body?: unknown): Promise<Answer> {
  const response = await fetch(url, {
    method: 'POST', redirect: 'manual',
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  const location = response.headers.get('location') ?? undefined;
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch { /* a redirect or HTML */ }
  return { status: response.status, json, ...(location === undefined ? {} : { location }) };
}

/** Runs `task` over `items`, at most `concurrency` at a time; results in the items' order. */
export async function inParallel<T, R>(items: readonly T[], concurrency: number, task: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await task(items[i]!);
    }
  }));
  return results;
}

/** The winners of a rush: the first 60% pay, the next 10% cancel, the rest let the deadline pass. */
export function splitWinners<T>(winners: readonly T[]): { payers: T[]; cancellers: T[] } {
  const p = Math.floor(winners.length * 0.6);
  const c = Math.floor(winners.length * 0.1);
  return { payers: winners.slice(0, p), cancellers: winners.slice(p, p + c) };
}
