import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { Redis } from 'ioredis';
import { GateUnavailableError, type Admission, type GateItem, type GateLine, type StockGate } from './gate.ts';
import { MemoryStockGate } from './memory.ts';
import { deleteKeysUnder } from '../../../test/support/engines.ts';
import { RedisStockGate } from './redis.ts';

/**
 * Model-based tests of the StockGate port: random sequences of admissions (single and concurrent,
 * multi-line, inside and outside the sale window), releases of what was admitted, reloads (the
 * rebuild from the database) and, for Redis, a process restart and a data loss. After every step
 * each adapter must agree exactly with a reference model: available and every buyer's quota, never
 * negative, never past the limit, and available + quotas = what was loaded.
 */

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const NOW = Date.UTC(2030, 0, 1);
const USERS = ['u0', 'u1', 'u2', 'u3'] as const;
const UNKNOWN = 'no-such-item';

// Other suites share this Redis: every run gets its own prefix, and only those keys are deleted.
const admin = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 2000 });
admin.on('error', () => {});
const prefixes = new Set<string>();

before(async () => {
  await admin.connect();
  await admin.ping();
});

after(async () => {
  for (const prefix of prefixes) await deleteKeys(prefix);
  admin.disconnect();
});

const deleteKeys = (prefix: string) => deleteKeysUnder(admin, prefix);

// ---------------------------------------------------------------------------------------------
// The reference model

interface ModelItem extends GateItem {
  /** Units loaded: available + Σ quotas stays equal to this. */
  total: number;
}

interface Model {
  items: Map<string, ModelItem>;
  quotas: Map<string, number>; // `${item}|${user}`
  /** What each buyer was admitted and has not released yet, line by line (what a caller may give back). */
  ledger: Array<{ userId: string; line: GateLine }>;
  /** The gate lost its state and has not been loaded since (Redis data loss). */
  lost: boolean;
}

const qkey = (item: string, user: string) => `${item}|${user}`;

/** The gate's decision, lines taken in order with running totals (an item may appear twice). */
function decide(m: Model, userId: string, lines: readonly GateLine[], now: number): { ok: true } | { ok: false; failing: Array<{ saleItemId: string; reason: string; remaining: number }> } {
  const failing: Array<{ saleItemId: string; reason: string; remaining: number }> = [];
  const avail = new Map<string, number>();
  const taken = new Map<string, number>();
  for (const line of lines) {
    const item = m.items.get(line.saleItemId);
    if (!item) {
      failing.push({ saleItemId: line.saleItemId, reason: 'unknown_item', remaining: 0 });
      continue;
    }
    const a = avail.get(item.saleItemId) ?? item.available;
    const t = taken.get(item.saleItemId) ?? m.quotas.get(qkey(item.saleItemId, userId)) ?? 0;
    if (now < item.startsAt || now >= item.endsAt) failing.push({ saleItemId: item.saleItemId, reason: 'sale_not_active', remaining: item.available });
    else if (a < line.quantity) failing.push({ saleItemId: item.saleItemId, reason: 'sold_out', remaining: item.available });
    else if (t + line.quantity > item.perUserLimit) failing.push({ saleItemId: item.saleItemId, reason: 'limit_exceeded', remaining: item.available });
    else {
      avail.set(item.saleItemId, a - line.quantity);
      taken.set(item.saleItemId, t + line.quantity);
    }
  }
  return failing.length === 0 ? { ok: true } : { ok: false, failing };
}

function applyAdmit(m: Model, userId: string, lines: readonly GateLine[]): void {
  for (const line of lines) {
    const item = m.items.get(line.saleItemId)!;
    item.available -= line.quantity;
    m.quotas.set(qkey(line.saleItemId, userId), (m.quotas.get(qkey(line.saleItemId, userId)) ?? 0) + line.quantity);
    m.ledger.push({ userId, line });
  }
}

function applyRelease(m: Model, userId: string, line: GateLine): void {
  const item = m.items.get(line.saleItemId)!;
  item.available += line.quantity;
  const left = (m.quotas.get(qkey(line.saleItemId, userId)) ?? 0) - line.quantity;
  if (left > 0) m.quotas.set(qkey(line.saleItemId, userId), left);
  else m.quotas.delete(qkey(line.saleItemId, userId));
}

// ---------------------------------------------------------------------------------------------
// The system under test

interface Real {
  gate: StockGate;
  /** What a process restart does: a new gate instance over the same state (Redis) — memory has no such thing. */
  restart?: () => Promise<void>;
  /** What a Redis restart without persistence does: the gate's keys vanish. */
  lose?: () => Promise<void>;
  close(): Promise<void>;
}

type Adapter = { name: string; open: () => Real; perItem: boolean };

const ADAPTERS: Adapter[] = [
  { name: 'memory', perItem: false, open: () => {
    const gate = new MemoryStockGate();
    return { gate, close: async () => {} };
  } },
  ...[false, true].map((perItem): Adapter => ({
    name: perItem ? 'redis, item by item (Cluster mode)' : 'redis',
    perItem,
    open: () => {
      const prefix = `test-gateprop-${randomUUID()}`;
      prefixes.add(prefix);
      const real: Real = {
        gate: RedisStockGate.connect(REDIS_URL, { prefix, perItem }),
        async restart() {
          await real.gate.close?.();
          real.gate = RedisStockGate.connect(REDIS_URL, { prefix, perItem });
        },
        lose: async () => void (await deleteKeys(prefix)),
        async close() {
          await real.gate.close?.();
          await deleteKeys(prefix);
          prefixes.delete(prefix);
        },
      };
      return real;
    },
  })),
];

/** After every step: the adapter agrees with the model, and the model with the invariants. */
async function checkInvariants(m: Model, r: Real): Promise<void> {
  if (m.lost) return;
  for (const item of m.items.values()) {
    assert.ok(item.available >= 0, `model: ${item.saleItemId} available ${item.available} < 0`);
    assert.equal(await r.gate.available(item.saleItemId), item.available, `available of ${item.saleItemId}`);
    let quotas = 0;
    for (const user of USERS) {
      const q = m.quotas.get(qkey(item.saleItemId, user)) ?? 0;
      assert.ok(q >= 0 && q <= item.perUserLimit, `model: quota ${q} of ${user} on ${item.saleItemId} outside [0, ${item.perUserLimit}]`);
      assert.equal(await r.gate.quota(item.saleItemId, user), q, `quota of ${user} on ${item.saleItemId}`);
      quotas += q;
    }
    assert.equal(item.available + quotas, item.total, `units of ${item.saleItemId} not conserved`);
  }
}

function assertAdmission(adapter: Adapter, m: Model, userId: string, lines: readonly GateLine[], now: number, got: Admission): void {
  const expected = decide(m, userId, lines, now);
  const label = `${userId} ${JSON.stringify(lines)} at ${now - NOW}: got ${JSON.stringify(got)}`;
  if (expected.ok) {
    assert.equal(got.ok, true, `expected admission: ${label}`);
    return;
  }
  assert.equal(got.ok, false, `expected refusal ${JSON.stringify(expected.failing)}: ${label}`);
  if (got.ok) return;
  // One script checks the lines in order; item by item goes in sale-item-id order, so any failing line may be the one reported.
  const candidates = adapter.perItem ? expected.failing : expected.failing.slice(0, 1);
  const match = candidates.find((f) => f.saleItemId === got.saleItemId && f.reason === got.reason);
  assert.ok(match, `expected refusal among ${JSON.stringify(candidates)}: ${label}`);
}

// ---------------------------------------------------------------------------------------------
// Commands

type Cmd = fc.AsyncCommand<Model, Real>;

class Admit implements Cmd {
  readonly adapter: Adapter;
  readonly userId: string;
  readonly lines: GateLine[];
  readonly at: number;

  constructor(adapter: Adapter, userId: string, lines: GateLine[], at: number) {
    this.adapter = adapter;
    this.userId = userId;
    this.lines = lines;
    this.at = at;
  }
  check = () => true;
  async run(m: Model, r: Real): Promise<void> {
    const now = NOW + this.at;
    if (m.lost) {
      await assert.rejects(r.gate.admit(this.userId, this.lines, now), GateUnavailableError, 'a lost gate admits nobody');
      return;
    }
    const got = await r.gate.admit(this.userId, this.lines, now);
    assertAdmission(this.adapter, m, this.userId, this.lines, now, got);
    if (got.ok) {
      applyAdmit(m, this.userId, this.lines);
      assert.deepEqual(got.remaining.slice(-1), [m.items.get(this.lines.at(-1)!.saleItemId)!.available], 'remaining after the last line');
    }
    await checkInvariants(m, r);
  }
  toString = () => `admit(${this.userId}, ${JSON.stringify(this.lines)}, +${this.at})`;
}

/** Several buyers at once: the outcome depends on the interleaving, the invariants do not. */
class AdmitConcurrently implements Cmd {
  readonly attempts: Array<{ userId: string; lines: GateLine[] }>;

  constructor(attempts: Array<{ userId: string; lines: GateLine[] }>) {
    this.attempts = attempts;
  }
  check = (m: Readonly<Model>) => !m.lost;
  async run(m: Model, r: Real): Promise<void> {
    const results = await Promise.all(this.attempts.map((a) => r.gate.admit(a.userId, a.lines, NOW)));
    const demand = new Map<string, number>();
    const perUser = new Map<string, number>();
    for (const a of this.attempts) {
      for (const line of a.lines) {
        demand.set(line.saleItemId, (demand.get(line.saleItemId) ?? 0) + line.quantity);
        perUser.set(qkey(line.saleItemId, a.userId), (perUser.get(qkey(line.saleItemId, a.userId)) ?? 0) + line.quantity);
      }
    }
    // When the stock and every limit suffice for all of them together, nobody may be refused.
    const enough = [...demand].every(([id, d]) => {
      const item = m.items.get(id);
      return item !== undefined && item.startsAt <= NOW && NOW < item.endsAt && item.available >= d;
    }) && [...perUser].every(([k, q]) => {
      const [id] = k.split('|') as [string];
      return (m.quotas.get(k) ?? 0) + q <= m.items.get(id)!.perUserLimit;
    });
    if (enough) assert.ok(results.every((res) => res.ok), `enough for everyone, yet refused: ${JSON.stringify(results)}`);
    this.attempts.forEach((a, i) => {
      if (results[i]!.ok) {
        // Whatever the order, each admission must have been possible when it was made: the model accepts it now or the invariants break below.
        applyAdmit(m, a.userId, a.lines);
      }
    });
    await checkInvariants(m, r);
  }
  toString = () => `concurrently(${this.attempts.map((a) => `${a.userId}:${JSON.stringify(a.lines)}`).join(' | ')})`;
}

class Release implements Cmd {
  readonly pick: number;

  constructor(pick: number) {
    this.pick = pick;
  }
  check = (m: Readonly<Model>) => m.ledger.length > 0;
  async run(m: Model, r: Real): Promise<void> {
    const [entry] = m.ledger.splice(this.pick % m.ledger.length, 1);
    await r.gate.release(entry!.userId, [entry!.line]);
    // The database gives the units back either way; a lost gate learns it at its reload.
    applyRelease(m, entry!.userId, entry!.line);
    await checkInvariants(m, r);
  }
  toString = () => `release(#${this.pick})`;
}

/** The rebuild from the database: the database is the model here; replaces everything the gate knew. */
class Reload implements Cmd {
  check = () => true;
  async run(m: Model, r: Real): Promise<void> {
    const items = [...m.items.values()].map(({ total: _total, ...item }) => item);
    const quotas = [...m.quotas].filter(([, q]) => q > 0).map(([k, quantity]) => {
      const [saleItemId, userId] = k.split('|') as [string, string];
      return { saleItemId, userId, quantity };
    });
    await r.gate.load(items, quotas);
    m.lost = false;
    assert.equal(await r.gate.ready(), true);
    await checkInvariants(m, r);
  }
  toString = () => 'reload';
}

class Restart implements Cmd {
  check = () => true;
  async run(m: Model, r: Real): Promise<void> {
    if (!r.restart) return;
    await r.restart();
    assert.equal(await r.gate.ready(), !m.lost, 'a restarted process sees the state the gate had');
    await checkInvariants(m, r);
  }
  toString = () => 'restart';
}

class Lose implements Cmd {
  check = () => true;
  async run(m: Model, r: Real): Promise<void> {
    if (!r.lose) return;
    await r.lose();
    m.lost = true;
    // Admissions admitted before the loss cannot be given back to a gate that no longer has them.
    assert.equal(await r.gate.ready(), false);
  }
  toString = () => 'lose';
}

// ---------------------------------------------------------------------------------------------
// Generators

interface Setup { items: ModelItem[] }

const setupArb: fc.Arbitrary<Setup> = fc.array(
  fc.record({ available: fc.integer({ min: 0, max: 8 }), perUserLimit: fc.integer({ min: 1, max: 4 }), startsIn: fc.constantFrom(-1000, 0, 1, 500), lasts: fc.constantFrom(1, 1000, 3600_000) }),
  { minLength: 1, maxLength: 3 },
).map((specs) => ({
  items: specs.map((s, i) => ({
    saleItemId: `item-${i}-${randomUUID()}`, available: s.available, total: s.available, perUserLimit: s.perUserLimit,
    startsAt: NOW + s.startsIn, endsAt: NOW + s.startsIn + s.lasts,
  })),
}));

/** Lines over the run's items (by index; `items.length` means an unknown item); distinct items unless `duplicates`. */
function linesArb(itemCount: number, duplicates: boolean): fc.Arbitrary<Array<{ item: number; quantity: number }>> {
  const line = fc.record({ item: fc.integer({ min: 0, max: itemCount }), quantity: fc.integer({ min: 1, max: 4 }) });
  return duplicates
    ? fc.array(line, { minLength: 1, maxLength: 3 })
    : fc.uniqueArray(line, { minLength: 1, maxLength: 3, selector: (l) => l.item });
}

function commandsArb(adapter: Adapter, setup: Setup, duplicates: boolean): fc.Arbitrary<Iterable<Cmd>> {
  const ids = [...setup.items.map((i) => i.saleItemId), UNKNOWN];
  const toLines = (ls: Array<{ item: number; quantity: number }>): GateLine[] => ls.map((l) => ({ saleItemId: ids[l.item]!, quantity: l.quantity }));
  const known = (ls: Array<{ item: number; quantity: number }>) => ls.filter((l) => l.item < setup.items.length);
  const user = fc.constantFrom(...USERS);
  return fc.commands([
    fc.tuple(user, linesArb(setup.items.length, duplicates), fc.constantFrom(-1001, -1, 0, 1, 499, 999, 1000, 3600_000)).map(([u, ls, at]) => new Admit(adapter, u, toLines(ls), at)),
    fc.array(fc.tuple(user, linesArb(setup.items.length, duplicates)), { minLength: 2, maxLength: 8 })
      .map((as) => as.map(([u, ls]) => ({ userId: u, lines: toLines(known(ls)) })).filter((a) => a.lines.length > 0))
      .filter((as) => as.length > 0)
      .map((as) => new AdmitConcurrently(as)),
    fc.nat().map((n) => new Release(n)),
    fc.nat().map((n) => new Release(n)),
    fc.constant(new Reload()),
    fc.constant(new Restart()),
    fc.constant(new Lose()),
  ], { maxCommands: 40, size: 'max' });
}

async function runProperty(adapter: Adapter, numRuns: number, duplicates: boolean, seed?: number): Promise<void> {
  let runs = 0;
  let steps = 0;
  const started = performance.now();
  await fc.assert(
    fc.asyncProperty(setupArb.chain((setup) => fc.tuple(fc.constant(setup), commandsArb(adapter, setup, duplicates))), async ([setup, cmds]) => {
      const real = adapter.open();
      try {
        const model: Model = { items: new Map(setup.items.map((i) => [i.saleItemId, { ...i }])), quotas: new Map(), ledger: [], lost: false };
        await real.gate.load(setup.items.map(({ total: _total, ...item }) => item), []);
        await fc.asyncModelRun(() => ({ model, real }), cmds);
        runs++;
        steps += [...cmds].length;
      } finally {
        await real.close();
      }
    }),
    { numRuns, includeErrorInReport: true, ...(seed !== undefined ? { seed } : {}) },
  );
  console.log(`${adapter.name}${duplicates ? ', repeated items' : ''}: ${runs} runs, ${steps} steps, ${Math.round(performance.now() - started)} ms`);
}

describe('StockGate model-based properties', () => {
  for (const adapter of ADAPTERS) {
    it(`when random admissions, releases, reloads and losses hit the ${adapter.name} gate, then it agrees with the model after every step`, async () => {
      await runProperty(adapter, adapter.name === 'memory' ? 300 : 120, false);
    });
  }

  for (const adapter of ADAPTERS) {
    it(`when one attempt names an item twice, then the ${adapter.name} gate decides on running totals`, async () => {
      await runProperty(adapter, adapter.name === 'memory' ? 150 : 60, true);
    });
  }

  // Found by the property above with duplicates allowed for the memory adapter (fixed: it checked
  // each line against the counters before any line was taken). Unreachable over HTTP (orders merge
  // lines per item before the gate), but the port and the Redis scripts allow repeated items.
  it('when [{a,2},{a,2}] meets 3 available, then the memory gate refuses it and takes nothing', async () => {
    const gate = new MemoryStockGate();
    await gate.load([{ saleItemId: 'a', available: 3, perUserLimit: 3, startsAt: NOW - 1, endsAt: NOW + 1000 }], []);
    const got = await gate.admit('u', [{ saleItemId: 'a', quantity: 2 }, { saleItemId: 'a', quantity: 2 }], NOW);
    assert.deepEqual(got, { ok: false, reason: 'sold_out', saleItemId: 'a', remaining: 3 });
    assert.equal(await gate.available('a'), 3);
    assert.equal(await gate.quota('a', 'u'), 0);
  });
});
