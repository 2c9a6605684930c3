import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { loadConfig, type Config } from '../platform/config.ts';
import type { Knobs } from './knobs.ts';
import { createPspServer, type PspOptions, type PspServer } from './server.ts';
import type { EventObject } from './state.ts';

/**
 * Test helpers for anything that needs the simulator: a running simulator on a random port, and a
 * webhook endpoint that records what it receives and lets a test await it (no sleeps).
 */

export const TEST_API_KEY = 'sk_test_psp_tests_key';
export const TEST_WEBHOOK_SECRET = 'whsec_psp_tests_secret_0123456789';

export interface ReceivedWebhook {
  rawBody: string;
  signature: string | undefined;
  headers: IncomingHttpHeaders;
  event: EventObject;
  /** What the receiver answered. */
  answered: number;
}

export interface WebhookReceiver {
  url: string;
  received: ReceivedWebhook[];
  /** Resolves once `count` received webhooks match (all by default); rejects after `timeoutMs` naming what did arrive. */
  waitFor(count: number, match?: (w: ReceivedWebhook) => boolean, timeoutMs?: number): Promise<ReceivedWebhook[]>;
  /** The next answers, in order (then 200 again); e.g. `[500]` makes the next delivery fail once. */
  answerNext(...statuses: number[]): void;
  close(): Promise<void>;
}

export async function startWebhookReceiver(): Promise<WebhookReceiver> {
  const received: ReceivedWebhook[] = [];
  const queued: number[] = [];
  const waiters = new Set<() => void>();
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const rawBody = Buffer.concat(chunks).toString('utf8');
      const answered = queued.shift() ?? 200;
      const signature = request.headers['stripe-signature'];
      received.push({ rawBody, signature: typeof signature === 'string' ? signature : undefined, headers: request.headers, event: JSON.parse(rawBody) as EventObject, answered });
      response.writeHead(answered, { 'content-type': 'application/json' }).end(JSON.stringify({ received: answered < 300 }));
      for (const check of waiters) check();
    });
  });
  server.keepAliveTimeout = 1000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/webhook`,
    received,
    waitFor(count, match = () => true, timeoutMs = 5000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const matching = received.filter(match);
          if (matching.length < count) return;
          cleanup();
          resolve(matching);
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`waited ${timeoutMs} ms for ${count} webhooks; received: ${received.map((w) => `${w.event.type}(${w.answered})`).join(', ') || 'none'}`));
        }, timeoutMs);
        const cleanup = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      });
    },
    answerNext(...statuses) {
      queued.push(...statuses);
    },
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

export interface TestResponse<T = Record<string, unknown>> {
  status: number;
  headers: Headers;
  body: T;
  text: string;
}

export interface RunningPsp {
  psp: PspServer;
  url: string;
  config: Config;
  /** A call with the API key; `form` is sent form-encoded (flat keys, e.g. `'metadata[order_id]'`), `json` as JSON. */
  call<T = Record<string, unknown>>(method: string, path: string, opts?: { form?: Record<string, string | number>; json?: unknown; headers?: Record<string, string>; apiKey?: string | null }): Promise<TestResponse<T>>;
  setKnobs(patch: Partial<Knobs>): Promise<Knobs>;
  close(): Promise<void>;
}

/** A simulator on 127.0.0.1, port 0, in-memory journal unless PSP_DATA_DIR is given, quiet logs, fast webhook retries. */
export async function startPsp(opts: { config?: Partial<Config> } & Omit<PspOptions, 'config'> = {}): Promise<RunningPsp> {
  const { config: overrides, ...rest } = opts;
  const config = loadConfig({}, {
    LOG_LEVEL: 'silent', PSP_DATA_DIR: 'memory://', PSP_API_KEY: TEST_API_KEY, PSP_WEBHOOK_SECRET: TEST_WEBHOOK_SECRET,
    PSP_WEBHOOK_URL: 'http://127.0.0.1:9/unused', ...overrides,
  });
  let base = '';
  const psp = await createPspServer({ webhookRetry: { attempts: 4, baseMs: 20, maxMs: 200 }, publicUrl: () => base, ...rest, config });
  base = await psp.listen({ host: '127.0.0.1', port: 0 });
  const url = base;
  const call: RunningPsp['call'] = async (method, path, callOpts = {}) => {
    const headers: Record<string, string> = { ...callOpts.headers };
    const key = callOpts.apiKey === undefined ? TEST_API_KEY : callOpts.apiKey;
    if (key !== null) headers.authorization = `Bearer ${key}`;
    let body: string | undefined;
    if (callOpts.form) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      body = new URLSearchParams(Object.entries(callOpts.form).map(([k, v]) => [k, String(v)])).toString();
    } else if (callOpts.json !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(callOpts.json);
    }
    const response = await fetch(`${url}${path}`, { method, headers, body, redirect: 'manual' });
    const text = await response.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      // HTML pages stay text
    }
    return { status: response.status, headers: response.headers, body: parsed as never, text };
  };
  return {
    psp, url, config, call,
    async setKnobs(patch) {
      const res = await call<Knobs>('POST', '/_sim/knobs', { json: patch });
      if (res.status !== 200) throw new Error(`knobs refused: ${res.text}`);
      return res.body;
    },
    close: () => psp.close(),
  };
}
