import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { Pool } from 'undici';
import { buildHttpApp, buildSystem, type System } from '../../src/app.ts';
import { loadConfig, type Config } from '../../src/platform/config.ts';
import type { Clock } from '../../src/platform/clock.ts';
import type { App } from '../../src/platform/http/server.ts';
import type { FlashSale, HoldMode, Product } from '../../src/catalog/index.ts';
import { freshDatabase } from './template.ts';
import { freshAmqpPrefix, freshPostgres, freshRedisPrefix, selectedEngines } from './engines.ts';
import { freePort } from './process.ts';
import { createPspServer, type PspServer } from '../../src/psp/index.ts';

/** Settings for tests: in-memory database, quiet logs, flow-control limits out of the way unless a test sets them. */
export function testConfig(overrides: Partial<Config> = {}): Config {
  return loadConfig({}, {
    NODE_ENV: 'test', LOG_LEVEL: 'silent', DATA_DIR: 'memory://', SEED_DEMO: false, PORT: 0,
    RATE_LIMIT_IP_MAX: 1_000_000, RATE_LIMIT_USER_MAX: 1_000_000, MAX_EVENT_LOOP_DELAY_MS: 0, BROKER_POLL_MS: 20, SWEEPER_INTERVAL_MS: 3_600_000,
    RATE_LIMIT_LOGIN_ACCOUNT_MAX: 1_000_000, RATE_LIMIT_LOGIN_IP_MAX: 1_000_000, RATE_LIMIT_REGISTER_IP_MAX: 1_000_000,
    JWT_SECRET: 'test-secret-at-least-16-chars', ...overrides,
  });
}

export interface Harness {
  /** 'embedded' (PGlite, in-process broker, memory gate) or 'distributed' (PostgreSQL, …). */
  engines: 'embedded' | 'distributed';
  system: System;
  app: App;
  url: string;
  /** The payment provider simulator, a real HTTP server whose webhooks reach this app. */
  psp: PspServer;
  pspUrl: string;
  http: HttpClient;
  close(): Promise<void>;
  buyerToken(userId?: string): { token: string; userId: string };
  adminToken(): string;
  /** A merchant with a shop, one product per item, and a sale; opens now unless told otherwise. */
  createSale(opts?: SaleOptions): Promise<{ sale: FlashSale; merchantToken: string; shopId: string }>;
  /** The buyer orders one unit over HTTP; asserts the 201 and returns the order's id. */
  placeOrder(token: string, saleItemId: string): Promise<string>;
  /** The buyer holds one unit in the cart over HTTP; asserts the 201 and returns the hold's id. */
  holdInCart(token: string, saleItemId: string): Promise<string>;
}

export interface SaleOptions {
  items?: Array<{ stock: number; perUserLimit?: number; flashPrice?: number }>;
  holdMode?: HoldMode;
  paymentWindowS?: number;
  startsInMs?: number;
  durationMs?: number;
}

export interface HttpResponse<T = any> {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: T;
}

export interface HttpClient {
  request<T = any>(method: string, path: string, opts?: { token?: string; body?: unknown; rawBody?: string; headers?: Record<string, string> }): Promise<HttpResponse<T>>;
  close(): Promise<void>;
}

/** Real HTTP over a connection pool: concurrency tests send truly concurrent requests. */
export function httpClient(url: string, connections = 64): HttpClient {
  const pool = new Pool(url, { connections, pipelining: 1, keepAliveTimeout: 10_000 });
  return {
    async request(method, path, opts = {}) {
      const headers: Record<string, string> = { ...opts.headers };
      if (opts.token) headers.authorization = `Bearer ${opts.token}`;
      let body: string | undefined = opts.rawBody;
      if (opts.body !== undefined) {
        body = JSON.stringify(opts.body);
        headers['content-type'] ??= 'application/json';
      }
      const response = await pool.request({ method: method as 'GET', path, headers, body });
      const text = await response.body.text();
      let parsed: unknown = text;
      try {
        parsed = text ? JSON.parse(text) : undefined;
      } catch {
        // non-JSON bodies (metrics) stay text
      }
      return { status: response.statusCode, headers: response.headers, body: parsed as any };
    },
    close: () => pool.close(),
  };
}

let merchantCounter = 0;

/** Builds the whole system on a fresh in-memory database and serves it on a random port. */
export async function startHarness(opts: { config?: Partial<Config>; clock?: Clock } = {}): Promise<Harness> {
  // The app's port is chosen before the app exists (the provider's webhook URL and WEB_ORIGINS name
  // it), so a suite running beside this one can take it in between: then start over on another.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startHarnessOnce(opts);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt === 3) throw error;
    }
  }
}

async function startHarnessOnce(opts: { config?: Partial<Config>; clock?: Clock }): Promise<Harness> {
  const appPort = await freePort();
  const pspConfig = testConfig({ PSP_DATA_DIR: 'memory://', PSP_WEBHOOK_URL: `http://127.0.0.1:${appPort}/v1/payments/webhook`, ...opts.config });
  const clock = opts.clock;
  let pspUrl = '';
  const psp = await createPspServer({
    config: pspConfig, publicUrl: () => pspUrl, webhookRetry: { attempts: 3, baseMs: 50, maxMs: 200 },
    ...(clock ? { now: () => clock.now().getTime() } : {}),
  });
  pspUrl = await psp.listen({ host: '127.0.0.1', port: 0 });
  const engines = selectedEngines();
  const postgres = engines === 'distributed' ? await freshPostgres() : undefined;
  const redis = engines === 'distributed' ? await freshRedisPrefix() : undefined;
  const amqpPrefix = engines === 'distributed' ? await freshAmqpPrefix() : undefined;
  const config = testConfig({
    PSP_URL: pspUrl, PSP_WEBHOOK_URL: pspConfig.PSP_WEBHOOK_URL,
    // The web pages are served by this app: a payment may send the buyer back to it.
    WEB_ORIGINS: `http://127.0.0.1:${appPort}`,
    ...(postgres ? { DATABASE_URL: postgres.url } : {}),
    ...(redis ? { REDIS_URL: redis.url, REDIS_KEY_PREFIX: redis.prefix } : {}),
    ...(amqpPrefix ? { AMQP_URL: amqpPrefix.url, AMQP_PREFIX: amqpPrefix.prefix } : {}),
    ...opts.config,
  });
  const db = postgres?.db ?? (await freshDatabase());
  const system = await buildSystem(config, { db, ...(clock ? { clock } : {}) });
  const app = await buildHttpApp(system);
  await system.start();
  const closeAll = async () => {
    await app.close();
    await system.close();
    await psp.close();
    await amqpPrefix?.drop([system.broker]);
    await postgres?.drop();
    await redis?.drop();
  };
  let address: string;
  try {
    address = await app.listen({ host: '127.0.0.1', port: appPort });
  } catch (error) {
    await closeAll();
    throw error;
  }
  const http = httpClient(address);
  return {
    engines, system, app, url: address, http, psp, pspUrl,
    async close() {
      await http.close();
      await closeAll();
    },
    buyerToken(userId = randomUUID()) {
      return { userId, token: system.tokens.issue({ userId, role: 'buyer' }) };
    },
    adminToken() {
      return system.tokens.issue({ userId: randomUUID(), role: 'admin' });
    },
    async placeOrder(token, saleItemId) {
      const res = await http.request('POST', '/v1/orders', { token, body: { items: [{ saleItemId, quantity: 1 }] } });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      return res.body.id as string;
    },
    async holdInCart(token, saleItemId) {
      const res = await http.request('POST', '/v1/cart/items', { token, body: { saleItemId, quantity: 1 } });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      return res.body.holdId as string;
    },
    async createSale(saleOpts: SaleOptions = {}) {
      const { accounts, catalog, clock } = system;
      const n = ++merchantCounter;
      const { user, shop } = await accounts.createMerchant(`merchant-${n}-${randomUUID()}@test.local`, 'merchant-password', `Shop ${n}`);
      const specs = saleOpts.items ?? [{ stock: 10 }];
      const products: Product[] = [];
      for (const [i, spec] of specs.entries()) products.push(await catalog.createProduct(shop.id, { name: `Product ${i}`, price: 10_000, currency: 'USD', description: '' }));
      const startsAt = new Date(clock.now().getTime() + (saleOpts.startsInMs ?? -1000));
      const sale = await catalog.createFlashSale(shop.id, {
        name: `Sale ${n}`, startsAt, endsAt: new Date(startsAt.getTime() + (saleOpts.durationMs ?? 3600_000)),
        paymentWindowS: saleOpts.paymentWindowS ?? 600, holdMode: saleOpts.holdMode ?? 'order',
        items: specs.map((spec, i) => ({ productId: products[i]!.id, flashPrice: spec.flashPrice ?? 5_000, stock: spec.stock, perUserLimit: spec.perUserLimit ?? 1 })),
      });
      return { sale, merchantToken: system.tokens.issue({ userId: user.id, role: 'merchant' }), shopId: shop.id };
    },
  };
}

/** Runs `count` tasks with at most `concurrency` in flight; returns results in order. */
export async function runConcurrently<T>(count: number, concurrency: number, task: (i: number) => Promise<T>): Promise<T[]> {
  const results = new Array<T>(count);
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, async () => {
    while (next < count) {
      const i = next++;
      results[i] = await task(i);
    }
  }));
  return results;
}

export function countBy<T>(items: readonly T[], key: (item: T) => string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const item of items) counts[key(item)] = (counts[key(item)] ?? 0) + 1;
  return counts;
}

/** The first column of the first row, as a number (for `select count(*) …`). */
export async function scalar(system: System, sql: string, params: unknown[] = []): Promise<number> {
  const [row] = await system.db.query<Record<string, number>>(sql, params);
  return Number(Object.values(row ?? {})[0] ?? NaN);
}

/**
 * Waits for a condition that another process or an HTTP round trip makes true (a webhook landing):
 * there is no event to subscribe to from here, so it checks every few milliseconds, with a limit.
 */
export async function until(condition: () => Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await condition())) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 15));
  }
}
