import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import calculateSlot from 'cluster-key-slot';
import { Redis } from 'ioredis';
import { gateContract } from './conformance.ts';
import { GateUnavailableError, type GateItem } from './gate.ts';
import { deleteKeysUnder } from '../../../test/support/engines.ts';
import { gateKeys } from './redis-keys.ts';
import { RedisStockGate, type RedisStockGateOptions } from './redis.ts';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const START_REDIS = 'redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log';
const NOW = Date.UTC(2030, 0, 1);

// Other suites share this Redis: every gate gets its own prefix, and only those keys are ever deleted.
const prefixes = new Set<string>();
const gates: RedisStockGate[] = [];
const admin = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 2000 });
admin.on('error', () => {}); // reported by the before hook below

before(async () => {
  try {
    await admin.connect();
    await admin.ping();
  } catch (error) {
    throw new Error(`Redis is not reachable at ${REDIS_URL} (${error instanceof Error ? error.message : String(error)}). These tests need a real Redis; start one with:\n  ${START_REDIS}`);
  }
});

after(async () => {
  await Promise.all(gates.map((gate) => gate.close()));
  for (const prefix of prefixes) await deleteKeys(prefix);
  admin.disconnect();
});

function newPrefix(): string {
  const prefix = `test-gate-${randomUUID()}`;
  prefixes.add(prefix);
  return prefix;
}

function openGate(options: RedisStockGateOptions = {}): { gate: RedisStockGate; prefix: string } {
  const prefix = newPrefix();
  const gate = RedisStockGate.connect(REDIS_URL, { prefix, ...options });
  gates.push(gate);
  return { gate, prefix };
}

const makeGate = (options: RedisStockGateOptions = {}) => openGate(options).gate;

/** What a Redis restart without persistence does to this gate: its keys vanish (never FLUSHALL: the Redis is shared). */
const deleteKeys = (prefix: string) => deleteKeysUnder(admin, prefix);

async function keysOf(prefix: string): Promise<string[]> {
  const found: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await admin.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    found.push(...keys);
    cursor = next;
  } while (cursor !== '0');
  return found.sort();
}

function item(overrides: Partial<GateItem> = {}): GateItem {
  return { saleItemId: randomUUID(), available: 10, perUserLimit: 2, startsAt: NOW - 1000, endsAt: NOW + 3600_000, ...overrides };
}


function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve = () => {};
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

async function until(condition: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

gateContract('redis', async () => makeGate());
gateContract('redis, item by item (Redis Cluster mode)', async () => makeGate({ perItem: true }));

describe('RedisStockGate', () => {
  // SCRIPT FLUSH (NOSCRIPT recovery) is tested in test/serial/redis-script-flush.test.ts: it
  // empties the script cache of every client of the shared Redis, so it runs alone.

  it('when Redis loses its data, then the gate is not ready and admits nobody until it is loaded again', async () => {
    const { gate, prefix } = openGate();
    const a = item({ available: 5 });
    await gate.load([a], []);
    assert.equal((await gate.admit('u1', [{ saleItemId: a.saleItemId, quantity: 1 }], NOW)).ok, true);

    await deleteKeys(prefix);

    assert.equal(await gate.ready(), false);
    await assert.rejects(gate.admit('u2', [{ saleItemId: a.saleItemId, quantity: 1 }], NOW), GateUnavailableError);
    await gate.release('u1', [{ saleItemId: a.saleItemId, quantity: 1 }]);
    assert.deepEqual(await keysOf(prefix), [], 'neither admit nor release recreated a half item');

    await gate.load([{ ...a, available: 4 }], [{ saleItemId: a.saleItemId, userId: 'u1', quantity: 1 }]);
    assert.equal(await gate.ready(), true);
    assert.deepEqual(await gate.admit('u2', [{ saleItemId: a.saleItemId, quantity: 1 }], NOW), { ok: true, remaining: [3] });
  });

  it('when Redis loses its data under several processes, then one rebuilds and the gate reopens only once it is done', async () => {
    const prefix = newPrefix();
    const processes = [RedisStockGate.connect(REDIS_URL, { prefix }), RedisStockGate.connect(REDIS_URL, { prefix })];
    gates.push(...processes);
    const [p1, p2] = processes as [RedisStockGate, RedisStockGate];
    const a = item({ available: 5 });
    const b = item({ available: 3 });
    await p1.load([a], []);
    assert.equal((await p2.admit('u1', [{ saleItemId: a.saleItemId, quantity: 1 }], NOW)).ok, true);

    // The database after that admission, plus a sale created while Redis is down.
    const database = { items: [{ ...a, available: 4 }, b], quotas: [{ saleItemId: a.saleItemId, userId: 'u1', quantity: 1 }] };
    const gateOpen = deferred();
    let rebuilds = 0;
    for (const gate of processes) {
      gate.onLost(async () => {
        rebuilds++;
        await gate.load(database.items, database.quotas);
        await gateOpen.promise;
      });
    }

    await deleteKeys(prefix);
    await assert.rejects(p1.admit('u2', [{ saleItemId: a.saleItemId, quantity: 1 }], NOW), GateUnavailableError);
    await assert.rejects(p2.admit('u2', [{ saleItemId: a.saleItemId, quantity: 1 }], NOW), GateUnavailableError);
    await until(() => rebuilds === 1);

    // Mid-rebuild: items are back but fenced; a new sale's own load cannot reopen the gate.
    await p2.load([b], []);
    assert.equal(await p1.ready(), false);
    assert.equal(await p2.ready(), false);
    await assert.rejects(p2.admit('u2', [{ saleItemId: a.saleItemId, quantity: 1 }], NOW), GateUnavailableError);
    await assert.rejects(p1.admit('u2', [{ saleItemId: b.saleItemId, quantity: 1 }], NOW), GateUnavailableError);

    gateOpen.resolve();
    await Promise.all(processes.map((gate) => gate.whenReady(5000)));
    assert.equal(rebuilds, 1, 'one process rebuilt');
    assert.deepEqual(await p1.admit('u2', [{ saleItemId: a.saleItemId, quantity: 1 }], NOW), { ok: true, remaining: [3] });
    assert.deepEqual(await p2.admit('u2', [{ saleItemId: b.saleItemId, quantity: 1 }], NOW), { ok: true, remaining: [2] });
    assert.equal(await p2.quota(a.saleItemId, 'u1'), 1);
  });

  it('when an item survives from another generation, then the gate drops its fence and rebuilds', async () => {
    const { gate, prefix } = openGate();
    const a = item({ available: 5 });
    await gate.load([a], []);
    let rebuilds = 0;
    gate.onLost(async () => {
      rebuilds++;
      await gate.load([a], []);
    });
    await admin.hset(gateKeys(prefix, a.saleItemId).item, 'epoch', 'an-older-generation');

    await assert.rejects(gate.admit('u1', [{ saleItemId: a.saleItemId, quantity: 1 }], NOW), GateUnavailableError);
    await gate.whenReady(5000);
    assert.equal(rebuilds, 1);
    assert.deepEqual(await gate.admit('u1', [{ saleItemId: a.saleItemId, quantity: 1 }], NOW), { ok: true, remaining: [4] });
  });

  it('when 2,000 buyers race over several connections for 100 units, then exactly 100 are admitted', async () => {
    const prefix = newPrefix();
    const processes = Array.from({ length: 8 }, () => RedisStockGate.connect(REDIS_URL, { prefix }));
    gates.push(...processes);
    const a = item({ available: 100, perUserLimit: 1 });
    await processes[0]!.load([a], []);
    const results = await Promise.all(
      Array.from({ length: 2000 }, (_, i) => processes[i % processes.length]!.admit(`u${i}`, [{ saleItemId: a.saleItemId, quantity: 1 }], NOW)),
    );
    assert.equal(results.filter((r) => r.ok).length, 100);
    assert.equal(results.filter((r) => !r.ok && r.reason === 'sold_out').length, 1900);
    assert.equal(await processes[3]!.available(a.saleItemId), 0);
    assert.equal(await admin.hlen(gateKeys(prefix, a.saleItemId).quota), 100);
  });

  it('when item by item a later line is refused, then the lines already taken are given back', async () => {
    const gate = makeGate({ perItem: true });
    const a = item({ saleItemId: `a-${randomUUID()}`, available: 5 });
    const b = item({ saleItemId: `b-${randomUUID()}`, available: 0 });
    await gate.load([a, b], []);
    const result = await gate.admit('u1', [{ saleItemId: b.saleItemId, quantity: 1 }, { saleItemId: a.saleItemId, quantity: 2 }], NOW);
    assert.deepEqual(result, { ok: false, reason: 'sold_out', saleItemId: b.saleItemId, remaining: 0 });
    assert.equal(await gate.available(a.saleItemId), 5);
    assert.equal(await gate.quota(a.saleItemId, 'u1'), 0);
    assert.deepEqual(await gate.admit('u1', [{ saleItemId: a.saleItemId, quantity: 2 }], NOW), { ok: true, remaining: [3] });
  });

  it('when keys are laid out, then every key of one item is in the slot of its sale item id', async () => {
    const { gate, prefix } = openGate();
    const a = item();
    await gate.load([a], [{ saleItemId: a.saleItemId, userId: 'u1', quantity: 1 }]);
    const keys = gateKeys(prefix, a.saleItemId);
    assert.deepEqual(await keysOf(prefix), [`${prefix}:gate:{fence}:epoch`, keys.item, keys.quota].sort());
    assert.equal(calculateSlot(keys.item), calculateSlot(a.saleItemId));
    assert.equal(calculateSlot(keys.quota), calculateSlot(a.saleItemId));
    assert.throws(() => new RedisStockGate(admin, { prefix: '{flashsale}' }), /braces/);
  });
});
