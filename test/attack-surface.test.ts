import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { createAccounts } from '../src/accounts/index.ts';
import { hashPassword, verifyPassword } from '../src/accounts/passwords.ts';
import { buildHttpApp, buildSystem } from '../src/app.ts';
import { ConfigError, loadConfig, refuseDevelopmentDefaults, trustedProxies } from '../src/platform/config.ts';
import { LruMap } from '../src/platform/lru.ts';
import { freshPostgres, freshRedisPrefix } from './support/engines.ts';
import { httpClient, runConcurrently, startHarness, testConfig, type Harness, type HttpResponse } from './support/harness.ts';
import { clusterSecrets, freePort, startCliProcess, stopProcess, type CliProcess } from './support/process.ts';

/**
 * The attack surface of issue #12: what an attacker who has read this repository (and so knows every
 * built-in secret) or who can send any request can do, and what each attempt gets.
 */

/**
 * Runs `flashsale <args>` as a real process with only `env` (and PATH) and waits for it to exit; one
 * that is still running after `timeoutMs` (it started instead of refusing) is killed and fails.
 */
async function runCli(args: readonly string[], env: Record<string, string>, timeoutMs = 60_000): Promise<{ code: number; stderr: string }> {
  const child = spawn(process.execPath, ['bin/flashsale.js', ...args], {
    cwd: join(import.meta.dirname, '..'),
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const [code, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
  clearTimeout(timer);
  if (code === null) throw new Error(`flashsale ${args.join(' ')} was still running after ${timeoutMs / 1000} s (${signal}):\n${stderr}`);
  return { code, stderr };
}

describe('attack surface (issue #12)', () => {
  // ============================================================================================
  describe('no published secret in a production role', () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'flashsale-roles-'));
    after(() => rmSync(dataDir, { recursive: true, force: true }));

    const refusals: Array<[role: string, env: Record<string, string>, names: string[]]> = [
      ['api', {}, ['JWT_SECRET', 'PSP_API_KEY', 'PSP_WEBHOOK_SECRET', 'SEED_DEMO']],
      ['worker', { NODE_ENV: 'development' }, ['JWT_SECRET', 'PSP_API_KEY', 'PSP_WEBHOOK_SECRET', 'SEED_DEMO']],
      ['psp', { NODE_ENV: 'test' }, ['PSP_API_KEY', 'PSP_WEBHOOK_SECRET']],
    ];
    for (const [role, env, names] of refusals) {
      it(`when \`flashsale ${role}\` starts on the built-in defaults (NODE_ENV=${env.NODE_ENV ?? 'unset'}), then it exits non-zero naming ${names.join(', ')} and opens nothing`, async () => {
        const roleDir = join(dataDir, role);
        const { code, stderr } = await runCli([role], { ...env, PORT: '0', PSP_PORT: '0', DATA_DIR: roleDir, PSP_DATA_DIR: roleDir });
        assert.notEqual(code, 0, stderr);
        for (const name of names) assert.match(stderr, new RegExp(`\\b${name}\\b`), `${role} names ${name}`);
        assert.throws(() => readdirSync(roleDir), /ENOENT/, 'nothing was opened before the refusal');
      });
    }

    it('when one secret is set and the others are left at their defaults, then the refusal names exactly the ones left', () => {
      const config = loadConfig({ ...clusterSecrets(), PSP_API_KEY: '' });
      assert.throws(() => refuseDevelopmentDefaults(config, 'api'), (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        assert.match(error.message, /\bPSP_API_KEY\b/);
        for (const name of ['JWT_SECRET', 'PSP_WEBHOOK_SECRET', 'SEED_DEMO']) assert.doesNotMatch(error.message, new RegExp(`\\b${name}\\b`));
        return true;
      });
      const typed = loadConfig({ ...clusterSecrets(), JWT_SECRET: 'dev-only-secret-change-me-please' });
      assert.throws(() => refuseDevelopmentDefaults(typed, 'worker'), /\bJWT_SECRET\b/, 'the published value typed in by hand is refused too');
      assert.throws(() => refuseDevelopmentDefaults(loadConfig({ ...clusterSecrets(), SEED_DEMO: 'true' }), 'api'), /\bSEED_DEMO\b/);
      for (const role of ['api', 'worker', 'psp'] as const) assert.doesNotThrow(() => refuseDevelopmentDefaults(loadConfig(clusterSecrets()), role));
    });

    it('when every role gets secrets of its own and SEED_DEMO=false, then api, worker and psp start', async () => {
      const env = { ...clusterSecrets(), DATA_DIR: 'memory://', PSP_DATA_DIR: 'memory://', LOG_LEVEL: 'info', DATABASE_URL: '', REDIS_URL: '', AMQP_URL: '' };
      const [apiPort, pspPort] = [await freePort(), await freePort()];
      const started = await Promise.allSettled([
        startCliProcess(['api'], { ...env, PORT: String(apiPort), PSP_URL: `http://127.0.0.1:${pspPort}` }, { ready: { http: `http://127.0.0.1:${apiPort}/ready` }, timeoutMs: 90_000 }),
        startCliProcess(['worker'], env, { ready: { log: 'worker is up' }, timeoutMs: 90_000 }),
        startCliProcess(['psp'], { ...env, PSP_PORT: String(pspPort) }, { ready: { http: `http://127.0.0.1:${pspPort}/health` }, timeoutMs: 90_000 }),
      ]);
      const running = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
      await Promise.all(running.map((p: CliProcess) => stopProcess(p)));
      for (const s of started) if (s.status === 'rejected') throw s.reason;
    });

    it('when `flashsale start` runs on the development defaults, then its first lines are a warning naming each of them', async () => {
      const port = await freePort();
      const url = `http://127.0.0.1:${port}`;
      const demo = await startCliProcess(['start'], {
        PORT: String(port), PSP_PORT: '0', DATA_DIR: 'memory://', PSP_DATA_DIR: 'memory://', LOG_LEVEL: 'info',
        JWT_SECRET: '', PSP_API_KEY: '', PSP_WEBHOOK_SECRET: '', SEED_DEMO: '', DATABASE_URL: '', REDIS_URL: '', AMQP_URL: '', PSP_URL: '', PSP_WEBHOOK_URL: '', PSP_PUBLIC_URL: '',
      }, { ready: { http: `${url}/ready` }, url, timeoutMs: 90_000 });
      await stopProcess(demo);
      const firstLines = demo.output().split('\n').slice(0, 12).join('\n');
      assert.match(firstLines, /WARNING/, demo.output().slice(0, 2000));
      assert.match(firstLines, /not for production/i);
      for (const name of ['JWT_SECRET', 'PSP_API_KEY', 'PSP_WEBHOOK_SECRET', 'SEED_DEMO']) assert.match(firstLines, new RegExp(`\\b${name}\\b`), `the warning names ${name}`);
    });
  });

  // ============================================================================================
  describe('TRUST_PROXY: a hop count or the proxies\' addresses, never everyone', () => {
    const refusedIn = (value: string) => {
      try {
        loadConfig({ TRUST_PROXY: value });
        return undefined;
      } catch (error) {
        assert.ok(error instanceof ConfigError, String(error));
        return error.message;
      }
    };

    it('when TRUST_PROXY would trust every client (true, yes, *, 0.0.0.0/0, ::/0) or names no address, then the config refuses it, naming TRUST_PROXY', () => {
      for (const value of ['true', 'TRUE', 'yes', '*', '0.0.0.0/0', '::/0', '10.0.0.1, 0.0.0.0/0', 'proxy.internal', '10.0.0.0/33', '1.2.3', '-1', '1.5']) {
        const message = refusedIn(value);
        assert.ok(message, `TRUST_PROXY=${value} loads`);
        assert.match(message, /\bTRUST_PROXY\b/);
      }
      assert.match(refusedIn('true') ?? '', /hop count|address/i, 'the error says what to write instead');
    });

    it('when TRUST_PROXY is unset, false, a hop count or a list of addresses and CIDRs, then Fastify gets exactly that', () => {
      const parsed = (value: string) => trustedProxies(loadConfig({ TRUST_PROXY: value }).TRUST_PROXY);
      assert.equal(parsed(''), false);
      assert.equal(parsed('false'), false);
      assert.equal(parsed('0'), false);
      assert.equal(parsed('2'), 2);
      assert.deepEqual(parsed(' 10.0.0.0/8, 192.168.1.7 ,fd00::/8, ::1, loopback'), ['10.0.0.0/8', '192.168.1.7', 'fd00::/8', '::1', 'loopback']);
    });

    /** The per-address limit (3 requests a minute) of an app behind `trustProxy`. */
    async function limitedApp(trustProxy?: string): Promise<Harness> {
      return startHarness({ config: { RATE_LIMIT_IP_MAX: 3, RATE_LIMIT_IP_WINDOW_MS: 60_000, ...(trustProxy === undefined ? {} : { TRUST_PROXY: trustProxy }) } });
    }
    const browse = (h: Harness, forwardedFor?: string): Promise<HttpResponse> =>
      h.http.request('GET', '/v1/flash-sales', forwardedFor === undefined ? {} : { headers: { 'x-forwarded-for': forwardedFor } });

    describe('with TRUST_PROXY unset', () => {
      let h: Harness;
      before(async () => (h = await limitedApp()));
      after(() => h?.close());

      it('when a client writes its own X-Forwarded-For, then the per-address limit still counts its TCP address: spoofing does not reset it', async () => {
        const statuses: number[] = [];
        for (const forged of ['198.51.100.1', '198.51.100.2', '198.51.100.3', '198.51.100.4', '203.0.113.5, 198.51.100.5']) statuses.push((await browse(h, forged)).status);
        assert.deepEqual(statuses, [200, 200, 200, 429, 429]);
        assert.equal((await browse(h)).status, 429, 'without the header: the same address, the same spent budget');
      });
    });

    describe('with TRUST_PROXY=1 (one proxy in front)', () => {
      let h: Harness;
      before(async () => (h = await limitedApp('1')));
      after(() => h?.close());

      it('when the client writes addresses in front of what the proxy appended, then the last hop is the address counted', async () => {
        const statuses: number[] = [];
        // The proxy appends the address it saw (203.0.113.9); whatever the client wrote before it varies.
        for (const forged of ['198.51.100.1', '198.51.100.2', '198.51.100.3', '198.51.100.4', '10.0.0.1, 198.51.100.5']) statuses.push((await browse(h, `${forged}, 203.0.113.9`)).status);
        assert.deepEqual(statuses, [200, 200, 200, 429, 429], 'the client-written part does not reset the limit');
        assert.equal((await browse(h, '203.0.113.10')).status, 200, 'another client behind the proxy has its own budget');
        assert.equal((await browse(h, '198.51.100.1, 203.0.113.10')).status, 200);
      });
    });

    describe('with TRUST_PROXY naming the proxies (10.0.0.0/8, not this client\'s 127.0.0.1)', () => {
      let h: Harness;
      before(async () => (h = await limitedApp('10.0.0.0/8')));
      after(() => h?.close());

      it('when a client that is not one of the proxies writes X-Forwarded-For, then its TCP address is counted and the header changes nothing', async () => {
        const statuses: number[] = [];
        for (const forged of ['198.51.100.1', '198.51.100.2, 10.0.0.7', '198.51.100.3', '198.51.100.4']) statuses.push((await browse(h, forged)).status);
        assert.deepEqual(statuses, [200, 200, 200, 429]);
      });
    });
  });

  // ============================================================================================
  describe('login and register throttled', () => {
    /** Per account: 5 failures in 15 minutes. Per address: 8 logins, 3 registrations a minute. */
    const limits = {
      RATE_LIMIT_LOGIN_ACCOUNT_MAX: 5, RATE_LIMIT_LOGIN_ACCOUNT_WINDOW_MS: 15 * 60_000,
      RATE_LIMIT_LOGIN_IP_MAX: 8, RATE_LIMIT_LOGIN_IP_WINDOW_MS: 60_000,
      RATE_LIMIT_REGISTER_IP_MAX: 3, RATE_LIMIT_REGISTER_IP_WINDOW_MS: 60_000,
      // Requests come from 127.0.0.1, a trusted proxy here: X-Forwarded-For plays the client's address.
      TRUST_PROXY: 'loopback',
    };
    let h: Harness;
    let nextAddress = 0;
    /** An address no request used before: each test's budget per address starts whole. */
    const freshAddress = () => `198.51.${Math.floor(++nextAddress / 250)}.${nextAddress % 250 + 1}`;
    const login = (email: string, password: string, from = freshAddress(), client = h.http) =>
      client.request('POST', '/v1/auth/login', { body: { email, password }, headers: { 'x-forwarded-for': from } });
    const register = (email: string, from: string) =>
      h.http.request('POST', '/v1/auth/register', { body: { email, password: 'a-long-password' }, headers: { 'x-forwarded-for': from } });
    const registered = async (email: string, password: string) => {
      const res = await h.http.request('POST', '/v1/auth/register', { body: { email, password }, headers: { 'x-forwarded-for': freshAddress() } });
      assert.equal(res.status, 201, JSON.stringify(res.body));
    };
    const throttled = (res: HttpResponse, windowS: number, label: string) => {
      assert.equal(res.status, 429, `${label}: ${res.status} ${JSON.stringify(res.body)}`);
      assert.equal(res.body.error.code, 'rate_limited', label);
      const retry = Number(res.headers['retry-after']);
      assert.ok(Number.isInteger(retry) && retry >= 1 && retry <= windowS, `${label}: Retry-After ${res.headers['retry-after']}`);
    };

    before(async () => (h = await startHarness({ config: limits })));
    after(() => h?.close());

    it('when an account has 5 failed logins, then the 6th attempt is 429 with Retry-After from any address, the right password included, and other accounts are untouched', async () => {
      await registered('victim@test.local', 'the-right-password');
      await registered('bystander@test.local', 'bystander-password');
      for (let i = 0; i < 5; i++) assert.equal((await login('victim@test.local', `guess-${i}`)).status, 401, `failure ${i + 1}`);
      throttled(await login('victim@test.local', 'guess-5'), 900, 'the 6th guess, from a new address');
      throttled(await login('  VICTIM@test.local ', 'the-right-password'), 900, 'the right password, in another spelling of the email');
      assert.equal((await login('bystander@test.local', 'bystander-password')).status, 200, 'another account logs in');
    });

    it('when the email is unknown, then failures are counted and refused the same way: the limit tells nothing about which emails exist', async () => {
      const unknown: number[] = [];
      const known: number[] = [];
      await registered('known@test.local', 'known-password');
      for (let i = 0; i < 6; i++) unknown.push((await login('nobody@test.local', `guess-${i}`)).status);
      for (let i = 0; i < 6; i++) known.push((await login('known@test.local', `guess-${i}`)).status);
      assert.deepEqual(unknown, [401, 401, 401, 401, 401, 429]);
      assert.deepEqual(known, unknown);
    });

    it('when 20 wrong passwords for one account arrive at once, then 5 are checked (401) and 15 refused (429): concurrency does not buy extra guesses', async () => {
      await registered('burst@test.local', 'burst-password');
      const statuses = await runConcurrently(20, 20, (i) => login('burst@test.local', `guess-${i}`).then((r) => r.status));
      assert.deepEqual({ 401: statuses.filter((s) => s === 401).length, 429: statuses.filter((s) => s === 429).length }, { 401: 5, 429: 15 });
    });

    it('when the email is unknown or the password wrong, then the answer is the same 401, byte for byte', async () => {
      await registered('same-answer@test.local', 'same-answer-password');
      const wrong = await login('same-answer@test.local', 'not-the-password');
      const unknown = await login('no-such-user@test.local', 'not-the-password');
      assert.equal(wrong.status, 401);
      assert.equal(unknown.status, wrong.status);
      assert.deepEqual(unknown.body, wrong.body);
      assert.equal(unknown.headers['content-type'], wrong.headers['content-type']);
    });

    it('when one address tries more than 8 logins a minute (over many accounts), then it gets 429 with Retry-After and another address does not', async () => {
      const from = freshAddress();
      const statuses: number[] = [];
      for (let i = 0; i < 8; i++) statuses.push((await login(`sprayed-${i}@test.local`, 'password-1', from)).status);
      assert.deepEqual(statuses, Array<number>(8).fill(401));
      throttled(await login('sprayed-8@test.local', 'password-1', from), 60, 'the 9th login from one address');
      assert.equal((await login('sprayed-9@test.local', 'password-1')).status, 401, 'another address is checked');
    });

    it('when one address registers more than 3 accounts a minute, then it gets 429 with Retry-After and nothing is created; another address still registers', async () => {
      const from = freshAddress();
      for (let i = 0; i < 3; i++) assert.equal((await register(`signup-${i}@test.local`, from)).status, 201);
      throttled(await register('signup-3@test.local', from), 60, 'the 4th registration');
      assert.equal((await h.system.accounts.findUserByEmail('signup-3@test.local')), undefined);
      assert.equal((await register('signup-4@test.local', freshAddress())).status, 201);
    });

    it('when the email is unknown, then login does the same work as for a known email — one scrypt of the same parameters — from the very first call', async () => {
      await registered('timed@test.local', 'timed-password');
      const { db, clock, tokens } = h.system;
      const [known] = await db.query<{ password_hash: string }>('select password_hash from users where email = $1', ['timed@test.local']);
      // Counting the work instead of timing it: a test on a loaded machine cannot tell 1 scrypt from 2 by the clock reliably.
      for (const first of ['unknown', 'known'] as const) {
        const work: string[] = [];
        const accounts = createAccounts({
          db, clock, tokens,
          passwords: {
            hash: async (password) => { work.push('hash'); return hashPassword(password); },
            verify: async (password, stored) => { work.push(`verify ${shapeOf(stored)}`); return verifyPassword(password, stored); },
          },
        });
        for (const which of first === 'unknown' ? (['unknown', 'known'] as const) : (['known', 'unknown'] as const)) {
          await assert.rejects(accounts.login(which === 'known' ? 'timed@test.local' : 'never-registered@test.local', 'not-the-password'),
            (e: unknown) => (e as { code?: string }).code === 'invalid_credentials');
        }
        assert.deepEqual(work, [`verify ${shapeOf(known!.password_hash)}`, `verify ${shapeOf(known!.password_hash)}`], `${first} first`);
      }
    });
  });

  describe('login throttling with REDIS_URL: the counters are shared by every API process', () => {
    let redis: Awaited<ReturnType<typeof freshRedisPrefix>>;
    let h: Harness;
    let secondApi: Awaited<ReturnType<typeof buildHttpApp>>;
    before(async () => {
      redis = await freshRedisPrefix();
      h = await startHarness({ config: { REDIS_URL: redis.url, REDIS_KEY_PREFIX: redis.prefix, RATE_LIMIT_LOGIN_ACCOUNT_MAX: 3, RATE_LIMIT_LOGIN_ACCOUNT_WINDOW_MS: 60_000 } });
      // A second HTTP edge over the same system: its own rate-limit plugin, so only Redis connects the two.
      secondApi = await buildHttpApp(h.system);
      await secondApi.listen({ host: '127.0.0.1', port: 0 });
    });
    after(async () => {
      await secondApi?.close();
      await h?.close();
      await redis?.drop();
    });

    it('when an account fails 3 times on one API, then the next attempt on the other API is 429, and Redis holds the counter under the prefix without the email in clear', async () => {
      const email = 'shared-victim@test.local';
      const second = httpClient(`http://127.0.0.1:${(secondApi.server.address() as { port: number }).port}`, 2);
      try {
        for (let i = 0; i < 3; i++) assert.equal((await h.http.request('POST', '/v1/auth/login', { body: { email, password: `guess-${i}` } })).status, 401);
        const res = await second.request('POST', '/v1/auth/login', { body: { email, password: 'guess-3' } });
        assert.equal(res.status, 429, JSON.stringify(res.body));
      } finally {
        await second.close();
      }
      const client = new Redis(redis.url, { maxRetriesPerRequest: 1 });
      try {
        const keys = await client.keys(`${redis.prefix}:rate-limit:*`);
        assert.ok(keys.some((k) => k.includes('login-account')), `login counter in Redis: ${keys.join(', ')}`);
        assert.ok(keys.every((k) => !k.includes('shared-victim')), `no email in the keys: ${keys.join(', ')}`);
      } finally {
        client.disconnect();
      }
    });
  });

  // ============================================================================================
  describe('every cache keyed by client input is bounded', () => {
    const CAP = 40;
    let h: Harness;
    before(async () => (h = await startHarness({ config: { CATALOG_NOT_FOUND_CACHE_MAX: CAP } })));
    after(() => h?.close());

    it(`when 10× its cap of distinct unknown ids are asked for (sales and sale items), then the catalog's not-found cache holds ${CAP}`, async () => {
      const buyer = h.buyerToken();
      await runConcurrently(5 * CAP, 8, async () => {
        const res = await h.http.request('GET', `/v1/flash-sales/${randomUUID()}`);
        assert.equal(res.status, 404, JSON.stringify(res.body));
      });
      await runConcurrently(5 * CAP, 8, async () => {
        const res = await h.http.request('POST', '/v1/orders', { token: buyer.token, body: { items: [{ saleItemId: randomUUID(), quantity: 1 }] } });
        assert.equal(res.status, 422, JSON.stringify(res.body));
      });
      assert.equal(h.system.catalog.notFoundCached(), CAP);
    });

    it('when the bounded map is full, then a new key evicts the least recently used, and reading a key keeps it', () => {
      const lru = new LruMap<string, number>(3);
      for (const [i, key] of ['a', 'b', 'c'].entries()) lru.set(key, i);
      assert.equal(lru.get('a'), 0, 'a is read: now the most recent');
      lru.set('d', 3);
      assert.equal(lru.size, 3);
      assert.equal(lru.get('b'), undefined, 'b, the least recently used, went');
      assert.deepEqual(['a', 'c', 'd'].map((k) => lru.get(k)), [0, 2, 3]);
      for (let i = 0; i < 30; i++) lru.set(`k${i}`, i);
      assert.equal(lru.size, 3);
    });
  });

  // ============================================================================================
  describe('/metrics behind METRICS_TOKEN', () => {
    const token = `metrics-${randomUUID()}`;
    let h: Harness;
    before(async () => (h = await startHarness({ config: { METRICS_TOKEN: token } })));
    after(() => h?.close());

    it('when METRICS_TOKEN is set, then /metrics answers 401 without `Authorization: Bearer <token>` (none, wrong, another scheme, an admin JWT) and 200 with it', async () => {
      const scrape = (authorization?: string) => h.http.request('GET', '/metrics', authorization === undefined ? {} : { headers: { authorization } });
      const refused: Array<[string, string | undefined]> = [
        ['no header', undefined], ['a wrong token', `Bearer ${token}x`], ['the token without the scheme', token], ['Basic', `Basic ${token}`],
        ['an empty bearer', 'Bearer '], ['an admin JWT', `Bearer ${h.adminToken()}`], ['a prefix of the token', `Bearer ${token.slice(0, -1)}`],
      ];
      for (const [label, authorization] of refused) {
        const res = await scrape(authorization);
        assert.equal(res.status, 401, `${label}: ${res.status}`);
        assert.equal(res.body.error.code, 'unauthorized', label);
        assert.ok(!JSON.stringify(res.body).includes('flashsale_'), `${label}: no metric leaks`);
      }
      const ok = await scrape(`Bearer ${token}`);
      assert.equal(ok.status, 200);
      assert.match(String(ok.body), /^flashsale_http_requests_total/m);
    });

    it('when METRICS_TOKEN is unset, then /metrics stays open (the default) and a token shorter than 16 characters is refused at start', async () => {
      const open = await startHarness();
      try {
        assert.equal((await open.http.request('GET', '/metrics')).status, 200);
      } finally {
        await open.close();
      }
      assert.throws(() => loadConfig({ METRICS_TOKEN: 'short' }), /METRICS_TOKEN/);
    });
  });

  // ============================================================================================
  describe('/ready does not echo raw dependency errors', () => {
    it('when the database is gone, then /ready answers 503 with a fixed reason per dependency, and the detail goes to the log only', async () => {
      const postgres = await freshPostgres();
      const databaseName = new URL(postgres.url).pathname.slice(1);
      const logged: string[] = [];
      const log = pino({ level: 'info' }, { write: (line: string) => void logged.push(line) });
      const system = await buildSystem(testConfig({ DATABASE_URL: postgres.url, LOG_LEVEL: 'info' }), { log });
      const app = await buildHttpApp(system);
      try {
        const healthy = await app.inject({ method: 'GET', url: '/ready' });
        assert.equal(healthy.statusCode, 200, healthy.body);
        await postgres.drop();
        const res = await app.inject({ method: 'GET', url: '/ready' });
        assert.equal(res.statusCode, 503);
        assert.deepEqual(res.json(), { status: 'not_ready', checks: { database: 'down', gate: 'ok', broker: 'down' } });
        assert.ok(!res.body.includes(databaseName), 'the database name is not in the answer');
        const detail = logged.filter((line) => line.includes('readiness check failed'));
        assert.ok(detail.some((line) => line.includes('"check":"database"') && line.includes(databaseName)), `the log has the error: ${detail.join('')}`);
      } finally {
        await app.close();
        await system.close().catch(() => {});
      }
    });
  });
});

/** A stored hash's scheme and sizes (what the scrypt it costs depends on), without its secret parts. */
function shapeOf(stored: string): string {
  const [scheme, salt, hash] = stored.split('$');
  return `${scheme} salt ${Buffer.from(salt ?? '', 'base64').length} B, key ${Buffer.from(hash ?? '', 'base64').length} B`;
}
