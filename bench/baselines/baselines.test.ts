import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createSigner } from 'fast-jwt';
import { Redis } from 'ioredis';
import pg from 'pg';
import { Agent, request } from 'undici';
import { SERVICES } from '../../test/support/engines.ts';
import type { BaselineAudit, BaselineEnv, BenchItem } from './baseline.ts';
import { BASELINES } from './index.ts';

const SECRET = 'bench-baselines-test-secret';
const UNITS = 30;
const BUYERS = 300;
const GREEDY_TRIES = 5;
const sign = createSigner({ key: SECRET, algorithm: 'HS256' });

interface Target {
  url: string;
  env: BaselineEnv;
  /** SIGTERM, then the exit code. */
  stop(): Promise<number | null>;
}

let dir: string;
const agent = new Agent({ connections: BUYERS + GREEDY_TRIES + 5 });

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bench-baselines-'));
});

after(async () => {
  await agent.close();
  await rm(dir, { recursive: true, force: true });
});

function waitForReady(child: ChildProcess, output: () => string): Promise<number> {
  return new Promise((resolve, reject) => {
    const onData = () => {
      const ready = /^READY (\d+)$/m.exec(output());
      if (ready) resolve(Number(ready[1]));
    };
    child.stdout?.on('data', onData);
    child.once('exit', (code) => reject(new Error(`serve.ts exited with ${code} before READY:\n${output()}`)));
  });
}

/** Starts bench/serve.ts as the harness does, on a port the OS picks, with a fresh namespace. */
async function startTarget(target: string, items: readonly BenchItem[]): Promise<Target> {
  const env: BaselineEnv = {
    databaseUrl: SERVICES.postgres.url,
    redisUrl: SERVICES.redis.url,
    amqpUrl: SERVICES.rabbitmq.url,
    jwtSecret: SECRET,
    namespace: `bench_${randomBytes(6).toString('hex')}`,
  };
  const config = join(dir, `${env.namespace}.json`);
  await writeFile(config, JSON.stringify({ env, items }));
  const child = spawn(process.execPath, ['bench/serve.ts', '--target', target, '--port', '0', '--config', config], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stdout.on('data', (d: Buffer) => (log += d.toString()));
  child.stderr.on('data', (d: Buffer) => (log += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const port = await waitForReady(child, () => log);
  return {
    url: `http://127.0.0.1:${port}`,
    env,
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}

async function buy(target: Target, token: string, saleItemId: string): Promise<{ status: number; code?: unknown }> {
  const res = await request(`${target.url}/v1/orders`, {
    dispatcher: agent,
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ items: [{ saleItemId, quantity: 1 }] }),
  });
  const body: unknown = await res.body.json();
  const code = typeof body === 'object' && body !== null && 'code' in body ? body.code : undefined;
  return { status: res.statusCode, code };
}

async function settleAndAudit(target: Target): Promise<BaselineAudit> {
  const settled = await request(`${target.url}/__bench/settle`, { dispatcher: agent, method: 'POST' });
  assert.equal(settled.statusCode, 200);
  await settled.body.dump();
  const res = await request(`${target.url}/__bench/audit`, { dispatcher: agent });
  return (await res.body.json()) as BaselineAudit;
}

function count(results: ReadonlyArray<{ status: number }>, status: number): number {
  return results.filter((r) => r.status === status).length;
}

/** What teardown must leave: no schema, no keys. */
async function leftovers(namespace: string): Promise<{ schemas: number; keys: number }> {
  const client = new pg.Client({ connectionString: SERVICES.postgres.url });
  await client.connect();
  const { rowCount } = await client.query('select 1 from pg_namespace where nspname = $1', [namespace]);
  await client.end();
  const redis = new Redis(SERVICES.redis.url);
  const [, keys] = await redis.scan('0', 'MATCH', `${namespace}:*`, 'COUNT', 1000);
  redis.disconnect();
  return { schemas: rowCount ?? 0, keys: keys.length };
}

describe('benchmark baselines, served by bench/serve.ts on the real engines', () => {
  it('when the target is the ceiling, then every purchase is sold_out and the audit is empty', async (t) => {
    const target = await startTarget('ceiling', []);
    t.after(() => target.stop());
    assert.deepEqual(await buy(target, 'not-even-a-token', randomUUID()), { status: 409, code: 'sold_out' });
    assert.deepEqual(await settleAndAudit(target), { oversold: 0, orders: 0, units: 0 });
    assert.equal(await target.stop(), 0);
  });

  for (const baseline of BASELINES) {
    const oversells = baseline.name === 'check-then-update';
    it(`${baseline.name}: when ${BUYERS} buyers race for 2 × ${UNITS} units, then ${oversells ? 'the audit counts what it oversold' : 'exactly the units are sold'}`, { timeout: 30_000 }, async (t) => {
      const items: BenchItem[] = [0, 1].map(() => ({ id: randomUUID(), stock: UNITS, perUserLimit: 1 }));
      const target = await startTarget(baseline.name, items);
      t.after(() => target.stop());
      const [a, b] = items as [BenchItem, BenchItem];

      assert.deepEqual(await buy(target, 'Bearer.not.a.jwt', a.id), { status: 401, code: 'unauthorized' });
      const repeat = sign({ sub: 'repeat-buyer' });
      assert.equal((await buy(target, repeat, a.id)).status, 201);
      assert.deepEqual(await buy(target, repeat, a.id), { status: 409, code: 'limit_exceeded' });

      // One buyer also races itself, sent first so the item is surely not sold out yet.
      const greedy = sign({ sub: 'greedy-buyer' });
      const greedyRace = Array.from({ length: GREEDY_TRIES }, () => buy(target, greedy, b.id));
      const flood = Array.from({ length: BUYERS }, (_, i) => buy(target, sign({ sub: `buyer-${i}` }), (i % 2 === 0 ? a : b).id));
      const results = await Promise.all([...greedyRace, ...flood]);
      const greedyCreated = count(results.slice(0, GREEDY_TRIES), 201);
      const created = count(results, 201) + 1;
      assert.equal(count(results, 201) + count(results, 409), BUYERS + GREEDY_TRIES, 'only 201 and 409 answers');
      const audit = await settleAndAudit(target);
      if (oversells) {
        t.diagnostic(`check-then-update oversold ${audit.oversold} units (${audit.units} sold of ${2 * UNITS}); the greedy buyer got ${greedyCreated} of its limit 1`);
        assert.ok(audit.oversold >= 0);
        assert.equal(audit.orders, created);
      } else {
        assert.equal(greedyCreated, 1, 'a buyer racing itself gets its limit, no more');
        assert.deepEqual(audit, { oversold: 0, orders: 2 * UNITS, units: 2 * UNITS });
        assert.equal(created, audit.orders);
      }

      assert.equal(await target.stop(), 0);
      assert.deepEqual(await leftovers(target.env.namespace), { schemas: 0, keys: 0 });
    });
  }
});
