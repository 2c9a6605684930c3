import { performance } from 'node:perf_hooks';
import { Pool } from 'undici';

/** One purchase a buyer will attempt: its token and the JSON body, ready to send. */
export interface PlannedAttempt {
  token: string;
  body: string;
}

/** One HTTP exchange as the client saw it. Times are ms since the load started. */
export interface AttemptRecord {
  startMs: number;
  endMs: number;
  /** 0 when the request timed out or the connection failed. */
  status: number;
  /** The error code of a refusal (`sold_out`, `limit_exceeded`, …), from either error body shape. */
  code?: string;
  /** This exchange was answered 429/503 and will be (or was) retried. */
  retried: boolean;
  /** Index of the planned attempt this exchange belongs to. */
  attempt: number;
  /** The created resource's id, for a 2xx answer with an `id`. */
  id?: string;
}

export interface LoadOptions {
  url: string;
  /** HTTP connections, each with one request in flight (no pipelining): the concurrency. */
  connections: number;
  attempts: readonly PlannedAttempt[];
  /** A 429/503 is retried after its Retry-After (seconds, default 1), at most this many times. */
  maxRetries?: number;
  timeoutMs?: number;
  onProgress?: (done: number, accepted: number) => void;
}

export interface LoadResult {
  records: AttemptRecord[];
  /** Wall time from the first request sent to the last answer received. */
  durationMs: number;
  /** performance.now() when the load started: the records' times are relative to it. */
  t0: number;
}

interface Pending {
  index: number;
  attempt: PlannedAttempt;
  tries: number;
}

const SHED = new Set([429, 503]);

/**
 * Drives every planned attempt against `url` with `connections` requests in flight, retrying the
 * ones the server sheds as its Retry-After says — what a well-behaved client of a flash sale does.
 * The scheduler is ours (undici moves the bytes) because each buyer carries its own token and
 * retries are per buyer, which fixed-request generators do not model.
 */
export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const pool = new Pool(options.url, { connections: options.connections, pipelining: 1, keepAliveTimeout: 30_000 });
  const maxRetries = options.maxRetries ?? 30;
  const timeoutMs = options.timeoutMs ?? 10_000;
  const ready: Pending[] = options.attempts.map((attempt, index) => ({ index, attempt, tries: 0 })).reverse();
  const records: AttemptRecord[] = [];
  let waitingRetries = 0;
  let done = 0;
  let accepted = 0;
  let idle: Array<() => void> = [];
  const wakeAll = () => {
    const waiting = idle;
    idle = [];
    for (const resolve of waiting) resolve();
  };
  const t0 = performance.now();

  async function send(pending: Pending): Promise<void> {
    const startMs = performance.now() - t0;
    let status = 0;
    let code: string | undefined;
    let id: string | undefined;
    let retryAfterS = 1;
    try {
      const response = await pool.request({
        path: '/v1/orders', method: 'POST', body: pending.attempt.body,
        headers: { 'content-type': 'application/json', authorization: `Bearer ${pending.attempt.token}` },
        headersTimeout: timeoutMs, bodyTimeout: timeoutMs,
      });
      status = response.statusCode;
      const text = await response.body.text();
      if (status >= 400) code = errorCode(text);
      else if (status < 300) id = createdId(text);
      const header = response.headers['retry-after'];
      if (typeof header === 'string' && Number(header) > 0) retryAfterS = Number(header);
    } catch {
      status = 0;
    }
    const retry = SHED.has(status) && pending.tries < maxRetries;
    records.push({ startMs, endMs: performance.now() - t0, status, ...(code ? { code } : {}), ...(id ? { id } : {}), retried: retry, attempt: pending.index });
    if (retry) {
      waitingRetries++;
      setTimeout(() => {
        waitingRetries--;
        ready.push({ ...pending, tries: pending.tries + 1 });
        wakeAll();
      }, retryAfterS * 1000).unref();
      return;
    }
    done++;
    if (status >= 200 && status < 300) accepted++;
    options.onProgress?.(done, accepted);
  }

  async function connection(): Promise<void> {
    for (;;) {
      const next = ready.pop();
      if (next) {
        await send(next);
        continue;
      }
      if (waitingRetries === 0) {
        wakeAll(); // the others must see the end too
        return;
      }
      await new Promise<void>((resolve) => idle.push(resolve));
    }
  }

  await Promise.all(Array.from({ length: options.connections }, () => connection()));
  await pool.close();
  let first = Infinity;
  let last = 0;
  for (const r of records) {
    first = Math.min(first, r.startMs);
    last = Math.max(last, r.endMs);
  }
  return { records, durationMs: records.length === 0 ? 0 : last - first, t0 };
}

function createdId(text: string): string | undefined {
  try {
    const id: unknown = (JSON.parse(text) as { id?: unknown }).id;
    return typeof id === 'string' ? id : undefined;
  } catch {
    return undefined;
  }
}

function errorCode(text: string): string | undefined {
  try {
    const body: unknown = JSON.parse(text);
    if (typeof body !== 'object' || body === null) return undefined;
    const nested = (body as { error?: { code?: unknown } }).error?.code;
    const flat = (body as { code?: unknown }).code;
    const code = nested ?? flat;
    return typeof code === 'string' ? code : undefined;
  } catch {
    return undefined;
  }
}
