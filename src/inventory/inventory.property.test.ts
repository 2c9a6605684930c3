import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import fc from 'fast-check';
import { Redis } from 'ioredis';
import { ManualClock } from '../platform/clock.ts';
import type { PgliteDatabase } from '../platform/database/pglite.ts';
import { AppError } from '../platform/errors.ts';
import { GateUnavailableError, type GateLine, type StockGate } from '../platform/gate/gate.ts';
import { MemoryStockGate } from '../platform/gate/memory.ts';
import { RedisStockGate } from '../platform/gate/redis.ts';
import { GroupCommitter, type BatchOutcome } from '../platform/group-commit.ts';
import { freshDatabase } from '../../test/support/template.ts';
import { deleteKeysUnder } from '../../test/support/engines.ts';
import { createInventory, type Hold, type Inventory, type ReserveRequest } from './index.ts';
import { createEmitter } from '../platform/broker/outbox.ts';

/**
 * Model-based tests of the inventory component with its gate, composed as src/app.ts composes
 * them (memory gate rebuilt at start; Redis gate rebuilt only when lost, through `onLost`), on a
 * real PGlite database. Purchases go the way the order component sends them: gate first, then a
 * group commit (`reserve` in one transaction per batch), refused attempts undone in the gate.
 *
 * Random interleavings of purchases (one at a time and several at once), cancels, payments,
 * cancel/pay races, admin unsells (restock or write-off), cart checkouts, time passing, expiry,
 * process restarts, crashes between admission and commit, a wrong gate (more units than the
 * database, quotas forgotten) and Redis data losses (also with traffic during the rebuild). A model
 * predicts every outcome: each purchase's answer, each hold's state, the stock row, and what the
 * gate must hold. After every step, the audit's invariants (docs/architecture.md, "Invariants: the audit"):
 * - per item: initial = available + held + sold + written_off, every term ≥ 0, the stock row
 *   agrees with its holds, never oversold — whatever the gate believed;
 * - per buyer and item: the quota equals the buyer's held + sold + written-off units, ≤ the limit;
 * - the gate holds exactly what the model says: the database's view, or the drift the design
 *   allows until the next rebuild (an admission whose process died before its commit stays taken
 *   in a Redis gate; a wrong load stays wrong; traffic during a rebuild may drift it either way,
 *   docs/deployment.md), and after a quiet rebuild the database's view again;
 * - the component's own audit finds nothing (comparing the gate too whenever it should agree);
 * - releasing (or paying, or unselling) twice changes nothing the second time.
 */

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const MINUTE = 60_000;
/** Stale holds are checked by the Expire step itself; the audit after other steps ignores them. */
const NO_GRACE_CHECK = 10 * 365 * 24 * 3600_000;
const CART_WINDOW_MS = 5 * MINUTE;
const ORDER_WINDOW_MS = 10 * MINUTE;

let db: PgliteDatabase;
const admin = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 2000 });
admin.on('error', () => {});
const prefixes = new Set<string>();
const stats = { runs: 0, steps: 0, drifted: 0, unavailable: 0, byCommand: {} as Record<string, number> };

before(async () => {
  db = await freshDatabase();
  await admin.connect();
  await admin.ping();
});

after(async () => {
  for (const prefix of prefixes) await deleteKeys(prefix);
  admin.disconnect();
  await db?.close();
});

const deleteKeys = (prefix: string) => deleteKeysUnder(admin, prefix);

// ---------------------------------------------------------------------------------------------
// The system: one "process" (gate, inventory, group committer) at a time over the shared database

type GateKind = 'memory' | 'redis';

interface Process {
  gate: StockGate;
  inventory: Inventory;
  committer: GroupCommitter<ReserveRequest, Hold[]>;
}

interface Real {
  kind: GateKind;
  clock: ManualClock;
  prefix: string;
  process: Process;
}

/** Builds gate and inventory as buildSystem does, and the order component's group commit around `reserve`. */
async function startProcess(kind: GateKind, clock: ManualClock, prefix: string): Promise<Process> {
  const gate: StockGate = kind === 'redis' ? RedisStockGate.connect(REDIS_URL, { prefix }) : new MemoryStockGate();
  const inventory = createInventory({ db, clock, gate, emit: createEmitter(clock) });
  if (gate instanceof RedisStockGate) {
    gate.onLost(() => inventory.rebuildGate());
    await gate.whenReady(10_000);
  } else {
    await inventory.rebuildGate();
  }
  // As the order component's purchase (order/purchase.ts): one transaction per batch; refused or failed attempts are undone in the gate.
  const committer = new GroupCommitter<ReserveRequest, Hold[]>(async (requests) => {
    let outcomes: Array<BatchOutcome<Hold[]>>;
    try {
      const results = await db.transaction((tx) => inventory.reserve(tx, requests));
      outcomes = results.map((r) => (r.ok ? { ok: true, value: r.holds } : { ok: false, error: new AppError(r.reason) }));
    } catch (error) {
      outcomes = requests.map(() => ({ ok: false, error: new AppError('unavailable', 'Could not save the order; retry.', { cause: error }) }));
    }
    await Promise.all(requests.map((r, i) => (outcomes[i]!.ok ? undefined : inventory.undoAdmission(r.userId, r.lines).catch(() => undefined))));
    return outcomes;
  }, { maxWaitMs: 2, maxBatch: 32, maxQueue: 1000 });
  return { gate, inventory, committer };
}

async function stopProcess(p: Process): Promise<void> {
  await p.committer.close();
  await p.gate.close?.();
}

/** A refusal's reason is the gate's or the database's, or 'gate_unavailable' (a lost Redis gate). */
type Purchase = { ok: true; orderId: string | null; holds: Hold[] } | { ok: false; reason: string };

/** As the order component's `attempt`: the gate, then the group commit; a refusal comes back as its reason. */
async function purchase(r: Real, userId: string, lines: readonly GateLine[], kind: 'order' | 'cart'): Promise<Purchase> {
  const { inventory, committer } = r.process;
  let admission;
  try {
    admission = await inventory.admit(userId, lines);
  } catch (error) {
    if (error instanceof GateUnavailableError) return { ok: false, reason: 'gate_unavailable' };
    throw error;
  }
  if (!admission.ok) return { ok: false, reason: admission.reason };
  const orderId = kind === 'order' ? randomUUID() : null;
  const window = kind === 'order' ? ORDER_WINDOW_MS : CART_WINDOW_MS;
  const committed = committer.submit({ userId, lines, kind, orderId, expiresAt: new Date(r.clock.now().getTime() + window) });
  try {
    return { ok: true, orderId, holds: await committed };
  } catch (error) {
    if (error instanceof AppError && error.code !== 'unavailable') return { ok: false, reason: error.code };
    throw error;
  }
}

// ---------------------------------------------------------------------------------------------
// The model

type HoldStatus = 'held' | 'sold' | 'released' | 'written_off';

interface ModelItem {
  id: string;
  initial: number;
  limit: number;
  startsAt: number;
  endsAt: number;
}

interface ModelHold {
  id: string;
  item: string;
  user: string;
  quantity: number;
  kind: 'order' | 'cart';
  orderId: string | null;
  status: HoldStatus;
  expiresAt: number;
}

interface Model {
  now: number;
  users: string[];
  items: ModelItem[];
  holds: ModelHold[];
  orders: string[];
  /**
   * What the gate must hold: units left per item, and units per `item|user`. Equal to the
   * database's view except after a wrong load, a crash between admission and commit (Redis), or
   * traffic during a rebuild — the drift the design allows until the next rebuild.
   */
  gate: { available: Map<string, number>; quotas: Map<string, number> };
}

const pairKey = (item: string, user: string) => `${item}|${user}`;
const sum = (holds: readonly ModelHold[]) => holds.reduce((n, h) => n + h.quantity, 0);

function counts(m: Model, item: string): { available: number; held: number; sold: number; writtenOff: number } {
  const of = m.holds.filter((h) => h.item === item);
  const held = sum(of.filter((h) => h.status === 'held'));
  const sold = sum(of.filter((h) => h.status === 'sold'));
  const writtenOff = sum(of.filter((h) => h.status === 'written_off'));
  const initial = m.items.find((i) => i.id === item)!.initial;
  return { available: initial - held - sold - writtenOff, held, sold, writtenOff };
}

function quotaOf(m: Model, item: string, user: string): number {
  return sum(m.holds.filter((h) => h.item === item && h.user === user && h.status !== 'released'));
}

const gateAvailable = (m: Model, item: string) => m.gate.available.get(item) ?? 0;
const gateQuota = (m: Model, item: string, user: string) => m.gate.quotas.get(pairKey(item, user)) ?? 0;

/** The gate's refusal for one line (its order of checks), if any. */
function gateRefusal(m: Model, userId: string, line: GateLine): string | undefined {
  const item = m.items.find((i) => i.id === line.saleItemId)!;
  if (m.now < item.startsAt || m.now >= item.endsAt) return 'sale_not_active';
  if (gateAvailable(m, item.id) < line.quantity) return 'sold_out';
  if (gateQuota(m, item.id, userId) + line.quantity > item.limit) return 'limit_exceeded';
  return undefined;
}

/** The database's refusal for one line (inventory.reserve's order of checks), if any. */
function dbRefusal(m: Model, userId: string, line: GateLine): string | undefined {
  const item = m.items.find((i) => i.id === line.saleItemId)!;
  if (counts(m, item.id).available < line.quantity) return 'sold_out';
  if (quotaOf(m, item.id, userId) + line.quantity > item.limit) return 'limit_exceeded';
  return undefined;
}

/**
 * What a purchase must get: held only if the gate and then the database allow every line.
 * Reasons: any a failing line may give, or sold_out from the sold-out flag (set only while the
 * gate shows 0 left).
 */
function expectPurchase(m: Model, userId: string, lines: readonly GateLine[]): { ok: boolean; reasons: Set<string> } {
  const reasons = new Set<string>();
  for (const line of lines) {
    if (gateAvailable(m, line.saleItemId) === 0) reasons.add('sold_out');
    const refusal = gateRefusal(m, userId, line) ?? dbRefusal(m, userId, line);
    if (refusal) reasons.add(refusal);
  }
  const gateAdmits = lines.every((l) => !gateRefusal(m, userId, l));
  return { ok: gateAdmits && lines.every((l) => !dbRefusal(m, userId, l)), reasons };
}

function gateTake(m: Model, userId: string, lines: readonly GateLine[]): void {
  for (const l of lines) {
    m.gate.available.set(l.saleItemId, gateAvailable(m, l.saleItemId) - l.quantity);
    m.gate.quotas.set(pairKey(l.saleItemId, userId), gateQuota(m, l.saleItemId, userId) + l.quantity);
  }
}

/** Units released in the database go back to the gate after commit, hold by hold; a buyer's quota stops at 0. */
function gateGive(m: Model, holds: readonly ModelHold[]): void {
  for (const h of holds) {
    m.gate.available.set(h.item, gateAvailable(m, h.item) + h.quantity);
    const left = gateQuota(m, h.item, h.user) - h.quantity;
    if (left > 0) m.gate.quotas.set(pairKey(h.item, h.user), left);
    else m.gate.quotas.delete(pairKey(h.item, h.user));
  }
}

/** The process dies and starts again; the model's memory gate is what the new process loads from the database. */
async function restartProcess(m: Model, r: Real): Promise<void> {
  await stopProcess(r.process);
  r.process = await startProcess(r.kind, r.clock, r.prefix);
  if (r.kind === 'memory') gateFromDb(m);
}

/** What a rebuild loads: the database's view. */
function gateFromDb(m: Model): void {
  m.gate.available = new Map(m.items.map((i) => [i.id, counts(m, i.id).available]));
  m.gate.quotas = new Map(m.items.flatMap((i) => m.users.map((u) => [pairKey(i.id, u), quotaOf(m, i.id, u)] as const)).filter(([, q]) => q > 0));
}

function gateAgreesWithDb(m: Model): boolean {
  return m.items.every((i) => gateAvailable(m, i.id) === counts(m, i.id).available && m.users.every((u) => gateQuota(m, i.id, u) === quotaOf(m, i.id, u)));
}

function adopt(m: Model, userId: string, kind: 'order' | 'cart', result: Extract<Purchase, { ok: true }>): void {
  gateTake(m, userId, result.holds.map((h) => ({ saleItemId: h.saleItemId, quantity: h.quantity })));
  for (const hold of result.holds) {
    m.holds.push({
      id: hold.holdId, item: hold.saleItemId, user: userId, quantity: hold.quantity, kind, orderId: result.orderId, status: 'held',
      expiresAt: m.now + (kind === 'order' ? ORDER_WINDOW_MS : CART_WINDOW_MS),
    });
  }
  if (result.orderId) m.orders.push(result.orderId);
}

// ---------------------------------------------------------------------------------------------
// The invariants, after every step

interface DbState {
  stock: Array<{ sale_item_id: string; initial: number; available: number; held: number; sold: number; written_off: number; per_user_limit: number }>;
  holds: Array<{ id: string; sale_item_id: string; user_id: string; quantity: number; status: HoldStatus; order_id: string | null }>;
  quotas: Array<{ sale_item_id: string; user_id: string; quantity: number; per_user_limit: number }>;
}

async function readDb(): Promise<DbState> {
  return {
    stock: await db.query('select sale_item_id, initial, available, held, sold, written_off, per_user_limit from stock_items order by sale_item_id'),
    holds: await db.query('select id, sale_item_id, user_id, quantity, status, order_id from holds order by id'),
    quotas: await db.query('select sale_item_id, user_id, quantity, per_user_limit from purchase_quotas order by sale_item_id, user_id'),
  };
}

async function readGate(m: Model, r: Real): Promise<{ available: Record<string, number | undefined>; quotas: Record<string, number> }> {
  const available: Record<string, number | undefined> = {};
  const quotas: Record<string, number> = {};
  for (const item of m.items) {
    available[item.id] = await r.process.gate.available(item.id);
    for (const user of m.users) quotas[pairKey(item.id, user)] = await r.process.gate.quota(item.id, user);
  }
  return { available, quotas };
}

async function checkInvariants(m: Model, r: Real, where: string): Promise<void> {
  const state = await readDb();
  const say = (what: string) => `${where}: ${what}`;
  for (const row of state.stock) {
    const holds = state.holds.filter((h) => h.sale_item_id === row.sale_item_id);
    const by = (status: HoldStatus) => holds.filter((h) => h.status === status).reduce((n, h) => n + h.quantity, 0);
    for (const term of ['available', 'held', 'sold', 'written_off'] as const) assert.ok(row[term] >= 0, say(`${term} < 0: ${JSON.stringify(row)}`));
    assert.equal(row.available + row.held + row.sold + row.written_off, row.initial, say(`unbalanced: ${JSON.stringify(row)}`));
    assert.equal(row.held, by('held'), say(`held ≠ held holds: ${JSON.stringify(row)}`));
    assert.equal(row.sold, by('sold'), say(`sold ≠ sold holds: ${JSON.stringify(row)}`));
    assert.equal(row.written_off, by('written_off'), say(`written_off ≠ written-off holds: ${JSON.stringify(row)}`));
    assert.ok(by('held') + by('sold') + by('written_off') <= row.initial, say(`oversold: ${JSON.stringify(row)}`));
    for (const user of m.users) {
      const taken = holds.filter((h) => h.user_id === user && h.status !== 'released').reduce((n, h) => n + h.quantity, 0);
      const quota = state.quotas.find((q) => q.sale_item_id === row.sale_item_id && q.user_id === user)?.quantity ?? 0;
      assert.equal(quota, taken, say(`quota of ${user} ≠ its holds`));
      assert.ok(taken <= row.per_user_limit, say(`${user} has ${taken} > limit ${row.per_user_limit}`));
    }
  }

  // The model predicted every change exactly.
  assert.deepEqual(
    state.stock.map((s) => ({ id: s.sale_item_id, available: s.available, held: s.held, sold: s.sold, writtenOff: s.written_off })),
    [...m.items].sort((a, b) => (a.id < b.id ? -1 : 1)).map((i) => ({ id: i.id, ...counts(m, i.id) })),
    say('stock differs from the model'),
  );
  assert.deepEqual(
    state.holds.map((h) => ({ id: h.id, status: h.status, orderId: h.order_id })),
    [...m.holds].sort((a, b) => (a.id < b.id ? -1 : 1)).map((h) => ({ id: h.id, status: h.status, orderId: h.orderId })),
    say('holds differ from the model'),
  );

  // The gate: equal to the database, or to the drift the model knows of.
  const gate = await readGate(m, r);
  for (const item of m.items) {
    const dbAvailable = counts(m, item.id).available;
    assert.equal(gate.available[item.id], gateAvailable(m, item.id), say(`gate available of ${item.id} (database ${dbAvailable})`));
    assert.ok(gate.available[item.id]! >= 0, say('gate available < 0'));
    for (const user of m.users) {
      const k = pairKey(item.id, user);
      assert.equal(gate.quotas[k], gateQuota(m, item.id, user), say(`gate quota of ${k} (database ${quotaOf(m, item.id, user)})`));
    }
  }

  const audit = await r.process.inventory.audit(gateAgreesWithDb(m), NO_GRACE_CHECK);
  assert.deepEqual(audit.violations, [], say('the inventory audit found violations'));
}

/** After a step whose effect on the gate depends on timing the design leaves open: the model takes what the gate holds. */
async function gateFromReal(m: Model, r: Real): Promise<void> {
  const gate = await readGate(m, r);
  m.gate.available = new Map(m.items.map((i) => [i.id, gate.available[i.id]!]));
  m.gate.quotas = new Map(Object.entries(gate.quotas).filter(([, q]) => q > 0));
  if (!gateAgreesWithDb(m)) stats.drifted++;
}

/** Everything the database and gate say, for "nothing changed" comparisons. */
async function snapshot(m: Model, r: Real): Promise<unknown> {
  return { db: await readDb(), gate: await readGate(m, r) };
}

// ---------------------------------------------------------------------------------------------
// Commands

type Cmd = fc.AsyncCommand<Model, Real>;
type LineSpec = { item: number; quantity: number };

const toLines = (m: Model, specs: readonly LineSpec[]): GateLine[] => specs.map((s) => ({ saleItemId: m.items[s.item % m.items.length]!.id, quantity: s.quantity }));
/** Distinct items per attempt: the order component merges lines per item before the gate. */
const distinct = (lines: GateLine[]): GateLine[] => [...new Map(lines.map((l) => [l.saleItemId, l])).values()];

function count(name: string): void {
  stats.byCommand[name] = (stats.byCommand[name] ?? 0) + 1;
  stats.steps++;
}

class Reserve implements Cmd {
  readonly user: number;
  readonly specs: LineSpec[];
  readonly kind: 'order' | 'cart';

  constructor(user: number, specs: LineSpec[], kind: 'order' | 'cart') {
    this.user = user;
    this.specs = specs;
    this.kind = kind;
  }
  check = () => true;
  async run(m: Model, r: Real): Promise<void> {
    count('reserve');
    const userId = m.users[this.user]!;
    const lines = distinct(toLines(m, this.kind === 'cart' ? this.specs.slice(0, 1) : this.specs));
    const expected = expectPurchase(m, userId, lines);
    const got = await purchase(r, userId, lines, this.kind);
    const label = `${this} → ${JSON.stringify(got)}`;
    if (expected.ok) assert.equal(got.ok, true, `expected a hold: ${label}`);
    else {
      assert.equal(got.ok, false, `expected a refusal (${[...expected.reasons].join('/')}): ${label}`);
      if (!got.ok) assert.ok(expected.reasons.has(got.reason), `expected ${[...expected.reasons].join('/')}: ${label}`);
    }
    if (got.ok) adopt(m, userId, this.kind, got);
    await checkInvariants(m, r, label);
  }
  toString = () => `reserve(user ${this.user}, ${JSON.stringify(this.specs)}, ${this.kind})`;
}

/** Several buyers at once (one group-commit batch or a few): adopt what was held, then the invariants. */
class ReserveConcurrently implements Cmd {
  readonly attempts: Array<{ user: number; specs: LineSpec[]; kind: 'order' | 'cart' }>;

  constructor(attempts: Array<{ user: number; specs: LineSpec[]; kind: 'order' | 'cart' }>) {
    this.attempts = attempts;
  }
  check = () => true;
  async run(m: Model, r: Real): Promise<void> {
    count('reserve concurrently');
    const attempts = this.attempts.map((a) => ({ ...a, userId: m.users[a.user]!, lines: distinct(toLines(m, a.kind === 'cart' ? a.specs.slice(0, 1) : a.specs)) }));
    // When stock and limits suffice for everyone together, in the gate and in the database, nobody may be refused.
    const demand = new Map<string, number>();
    for (const a of attempts) for (const l of a.lines) {
      demand.set(l.saleItemId, (demand.get(l.saleItemId) ?? 0) + l.quantity);
      demand.set(pairKey(l.saleItemId, a.userId), (demand.get(pairKey(l.saleItemId, a.userId)) ?? 0) + l.quantity);
    }
    const enough = [...demand].every(([k, d]) => {
      const [itemId, userId] = k.split('|') as [string, string | undefined];
      const item = m.items.find((i) => i.id === itemId)!;
      if (m.now < item.startsAt || m.now >= item.endsAt) return false;
      return userId === undefined
        ? Math.min(counts(m, itemId).available, gateAvailable(m, itemId)) >= d
        : Math.max(quotaOf(m, itemId, userId), gateQuota(m, itemId, userId)) + d <= item.limit;
    });
    const results = await Promise.all(attempts.map((a) => purchase(r, a.userId, a.lines, a.kind)));
    const label = `${this} → ${JSON.stringify(results.map((x) => (x.ok ? 'held' : x.reason)))}`;
    if (enough) assert.ok(results.every((x) => x.ok), `enough for everyone, yet refused: ${label}`);
    for (const [i, result] of results.entries()) {
      assert.ok(result.ok || ['sold_out', 'limit_exceeded', 'sale_not_active'].includes(result.reason), `unexpected failure: ${label}`);
      if (result.ok) adopt(m, attempts[i]!.userId, attempts[i]!.kind, result);
    }
    await checkInvariants(m, r, label);
  }
  toString = () => `concurrently(${this.attempts.map((a) => `user ${a.user} ${a.kind} ${JSON.stringify(a.specs)}`).join(' | ')})`;
}

type ReleaseMode = 'once' | 'twice' | 'twice at once';

/** A buyer cancels an order or removes a cart item; any hold, whatever its state (releasing a non-held hold does nothing). */
class Release implements Cmd {
  readonly pick: number;
  readonly mode: ReleaseMode;

  constructor(pick: number, mode: ReleaseMode) {
    this.pick = pick;
    this.mode = mode;
  }
  check = (m: Readonly<Model>) => m.holds.length > 0;
  async run(m: Model, r: Real): Promise<void> {
    count(`release ${this.mode}`);
    const hold = m.holds[this.pick % m.holds.length]!;
    const targets = m.holds.filter((h) => (hold.orderId ? h.orderId === hold.orderId : h.id === hold.id) && h.status === 'held');
    const release = () => db.transaction((tx) => (hold.orderId
      ? r.process.inventory.releaseOrder(tx, hold.orderId, 'cancelled')
      : r.process.inventory.releaseHolds(tx, [hold.id], 'removed_from_cart')));
    const label = `${this} on ${hold.id} (${hold.status}, order ${hold.orderId})`;
    let released;
    if (this.mode === 'twice at once') {
      const [a, b] = await Promise.all([release(), release()]);
      assert.ok(a.length === 0 || b.length === 0, `${label}: released by both of two concurrent calls`);
      released = [...a, ...b];
    } else {
      released = await release();
    }
    assert.deepEqual(released.map((h) => h.holdId).sort(), targets.map((h) => h.id).sort(), `${label}: released`);
    for (const h of targets) h.status = 'released';
    gateGive(m, targets);
    if (this.mode === 'twice') {
      const before = await snapshot(m, r);
      assert.deepEqual(await release(), [], `${label}: the second release released something`);
      assert.deepEqual(await snapshot(m, r), before, `${label}: the second release changed something`);
    }
    await checkInvariants(m, r, label);
  }
  toString = () => `release(#${this.pick}, ${this.mode})`;
}

/** The order was paid (payment.succeeded): held units become sold; paying again does nothing. */
class Pay implements Cmd {
  readonly pick: number;
  readonly twice: boolean;

  constructor(pick: number, twice: boolean) {
    this.pick = pick;
    this.twice = twice;
  }
  check = (m: Readonly<Model>) => m.orders.length > 0;
  async run(m: Model, r: Real): Promise<void> {
    count('pay');
    const orderId = m.orders[this.pick % m.orders.length]!;
    const targets = m.holds.filter((h) => h.orderId === orderId && h.status === 'held');
    const pay = () => db.transaction((tx) => r.process.inventory.sellOrder(tx, orderId));
    assert.deepEqual((await pay()).map((h) => h.holdId).sort(), targets.map((h) => h.id).sort(), `${this}: sold`);
    for (const h of targets) h.status = 'sold';
    if (this.twice) {
      const before = await snapshot(m, r);
      assert.deepEqual(await pay(), [], `${this}: paid twice`);
      assert.deepEqual(await snapshot(m, r), before, `${this}: the second payment changed something`);
    }
    await checkInvariants(m, r, `${this}`);
  }
  toString = () => `pay(order #${this.pick}${this.twice ? ', twice' : ''})`;
}

/** The buyer cancels while the payment lands: exactly one of them takes the held units. */
class CancelWhilePaying implements Cmd {
  readonly pick: number;

  constructor(pick: number) {
    this.pick = pick;
  }
  check = (m: Readonly<Model>) => m.orders.length > 0;
  async run(m: Model, r: Real): Promise<void> {
    count('cancel while paying');
    const orderId = m.orders[this.pick % m.orders.length]!;
    const targets = m.holds.filter((h) => h.orderId === orderId && h.status === 'held');
    const [released, sold] = await Promise.all([
      db.transaction((tx) => r.process.inventory.releaseOrder(tx, orderId, 'cancelled')),
      db.transaction((tx) => r.process.inventory.sellOrder(tx, orderId)),
    ]);
    const label = `${this}: released ${released.length}, sold ${sold.length} of ${targets.length}`;
    assert.ok(released.length === 0 || sold.length === 0, `${label}: both won`);
    assert.equal(released.length + sold.length, targets.length, label);
    for (const h of targets) h.status = released.length > 0 ? 'released' : 'sold';
    if (released.length > 0) gateGive(m, targets);
    await checkInvariants(m, r, label);
  }
  toString = () => `cancelWhilePaying(order #${this.pick})`;
}

/** An admin cancels a paid order: its sold units go back on sale, or are written off. */
class Unsell implements Cmd {
  readonly pick: number;
  readonly restock: boolean;
  readonly twice: boolean;

  constructor(pick: number, restock: boolean, twice: boolean) {
    this.pick = pick;
    this.restock = restock;
    this.twice = twice;
  }
  check = (m: Readonly<Model>) => m.orders.length > 0;
  async run(m: Model, r: Real): Promise<void> {
    count(this.restock ? 'unsell, restock' : 'unsell, write off');
    const orderId = m.orders[this.pick % m.orders.length]!;
    const targets = m.holds.filter((h) => h.orderId === orderId && h.status === 'sold');
    const unsell = () => db.transaction((tx) => r.process.inventory.unsellOrder(tx, orderId, this.restock));
    assert.deepEqual((await unsell()).map((h) => h.holdId).sort(), targets.map((h) => h.id).sort(), `${this}: unsold`);
    for (const h of targets) h.status = this.restock ? 'released' : 'written_off';
    if (this.restock) gateGive(m, targets);
    if (this.twice) {
      const before = await snapshot(m, r);
      assert.deepEqual(await unsell(), [], `${this}: unsold twice`);
      assert.deepEqual(await snapshot(m, r), before, `${this}: the second unsell changed something`);
    }
    await checkInvariants(m, r, `${this}`);
  }
  toString = () => `unsell(order #${this.pick}, ${this.restock ? 'restock' : 'write off'}${this.twice ? ', twice' : ''})`;
}

/** Checkout: the buyer's live cart holds move under a new order, keeping their expiry. */
class Checkout implements Cmd {
  readonly user: number;

  constructor(user: number) {
    this.user = user;
  }
  check = () => true;
  async run(m: Model, r: Real): Promise<void> {
    count('checkout');
    const userId = m.users[this.user]!;
    const expected = m.holds.filter((h) => h.user === userId && h.kind === 'cart' && h.status === 'held' && h.orderId === null && h.expiresAt > m.now);
    const live = (await r.process.inventory.cartHolds(db, userId)).filter((h) => h.expiresAt.getTime() > m.now);
    assert.deepEqual(live.map((h) => h.holdId).sort(), expected.map((h) => h.id).sort(), `${this}: the cart`);
    if (live.length === 0) return;
    const orderId = randomUUID();
    const attached = await db.transaction((tx) => r.process.inventory.attachToOrder(tx, live.map((h) => h.holdId), orderId));
    assert.equal(attached, live.length);
    for (const h of expected) h.orderId = orderId;
    m.orders.push(orderId);
    await checkInvariants(m, r, `${this}`);
  }
  toString = () => `checkout(user ${this.user})`;
}

class Tick implements Cmd {
  readonly ms: number;

  constructor(ms: number) {
    this.ms = ms;
  }
  check = () => true;
  async run(m: Model, r: Real): Promise<void> {
    count('tick');
    r.clock.advance(this.ms);
    m.now += this.ms;
  }
  toString = () => `tick(${this.ms / 1000} s)`;
}

/** Deadlines and the sweeper: unpaid orders past their deadline and cart holds past their expiry are released. */
class Expire implements Cmd {
  check = () => true;
  async run(m: Model, r: Real): Promise<void> {
    count('expire');
    const { inventory } = r.process;
    const dueOrders = [...new Set(m.holds.filter((h) => h.orderId && h.status === 'held' && h.expiresAt <= m.now).map((h) => h.orderId!))];
    const dueCart = m.holds.filter((h) => h.kind === 'cart' && h.orderId === null && h.status === 'held' && h.expiresAt <= m.now);
    const expiredOrderHolds: string[] = [];
    for (const orderId of dueOrders) {
      for (const h of await db.transaction((tx) => inventory.releaseOrder(tx, orderId, 'expired'))) expiredOrderHolds.push(h.holdId);
    }
    const cart = await inventory.expiredCartHolds(500);
    const released = cart.length > 0 ? await db.transaction((tx) => inventory.releaseHolds(tx, cart, 'expired')) : [];
    assert.deepEqual(released.map((h) => h.holdId).sort(), dueCart.map((h) => h.id).sort(), `${this}: cart holds expired`);
    const due = m.holds.filter((h) => h.orderId && dueOrders.includes(h.orderId) && h.status === 'held');
    assert.deepEqual(expiredOrderHolds.sort(), due.map((h) => h.id).sort(), `${this}: order holds expired`);
    for (const h of [...due, ...dueCart]) h.status = 'released';
    gateGive(m, [...due, ...dueCart]);
    // The audit's no_stale_holds: no hold older than its expiry (+ grace; none needed right after the sweep).
    const { violations } = await inventory.audit(false, 0);
    assert.deepEqual(violations.filter((v) => v.check === 'no_stale_holds'), [], `${this}: stale holds`);
    await checkInvariants(m, r, `${this}`);
  }
  toString = () => 'expire';
}

/** The process dies and starts again: memory gate rebuilt from the database; Redis gate kept as it is. */
class Restart implements Cmd {
  check = () => true;
  async run(m: Model, r: Real): Promise<void> {
    count('restart');
    await restartProcess(m, r);
    await checkInvariants(m, r, `${this}`);
  }
  toString = () => 'restart';
}

/**
 * The process dies after the gate admitted an attempt and before its group commit: the hold never
 * reaches the database. A memory gate is rebuilt from the database at the restart; a Redis gate
 * keeps the units out of sale until its next rebuild (the documented conservative drift).
 */
class CrashBetweenAdmitAndCommit implements Cmd {
  readonly user: number;
  readonly specs: LineSpec[];

  constructor(user: number, specs: LineSpec[]) {
    this.user = user;
    this.specs = specs;
  }
  check = () => true;
  async run(m: Model, r: Real): Promise<void> {
    count('crash between admit and commit');
    const userId = m.users[this.user]!;
    const lines = distinct(toLines(m, this.specs));
    const admission = await r.process.inventory.admit(userId, lines).catch((error: unknown) => {
      if (error instanceof GateUnavailableError) return undefined;
      throw error;
    });
    await restartProcess(m, r);
    if (r.kind !== 'memory' && admission?.ok) gateTake(m, userId, lines);
    await checkInvariants(m, r, `${this} (admitted: ${admission?.ok})`);
  }
  toString = () => `crashBetweenAdmitAndCommit(user ${this.user}, ${JSON.stringify(this.specs)})`;
}

/**
 * A wrong gate (a bug, a stale image): it believes there are more units than the database has, and
 * maybe forgot what buyers hold. The database re-decides every admission (reserve's double check under row locks), so nothing is
 * oversold and no limit passed; refused attempts are given back to the gate, so its error stays
 * exactly what it was until the next rebuild.
 */
class CorruptGate implements Cmd {
  readonly extra: number;
  readonly forgetQuotas: boolean;

  constructor(extra: number, forgetQuotas: boolean) {
    this.extra = extra;
    this.forgetQuotas = forgetQuotas;
  }
  check = () => true;
  async run(m: Model, r: Real): Promise<void> {
    count('corrupt gate');
    // In a fresh process: sold-out flags of the old one (set from the right gate) would hide the error.
    await restartProcess(m, r);
    for (const i of m.items) m.gate.available.set(i.id, gateAvailable(m, i.id) + this.extra);
    if (this.forgetQuotas) m.gate.quotas.clear();
    const quotas = [...m.gate.quotas].map(([k, quantity]) => {
      const [saleItemId, userId] = k.split('|') as [string, string];
      return { saleItemId, userId, quantity };
    });
    await r.process.gate.load(m.items.map((i) => ({ saleItemId: i.id, available: gateAvailable(m, i.id), perUserLimit: i.limit, startsAt: i.startsAt, endsAt: i.endsAt })), quotas);
    await checkInvariants(m, r, `${this}`);
  }
  toString = () => `corruptGate(+${this.extra} units${this.forgetQuotas ? ', quotas forgotten' : ''})`;
}

/**
 * Redis restarts empty (its keys vanish). Nobody may be admitted until the gate is rebuilt from the
 * database. With `traffic`, purchases and cancels run while the rebuild does; the database stays
 * exact, the gate may drift as documented. Without traffic, the rebuilt gate equals the database.
 * For the memory gate: a restart (its rebuild).
 */
class LoseGate implements Cmd {
  readonly traffic: Array<{ user: number; specs: LineSpec[]; afterMs: number }>;
  readonly cancels: number[];
  readonly lossAtMs: number;

  constructor(traffic: Array<{ user: number; specs: LineSpec[]; afterMs: number }>, cancels: number[], lossAtMs = 0) {
    this.traffic = traffic;
    this.cancels = cancels;
    this.lossAtMs = lossAtMs;
  }
  check = () => true;
  async run(m: Model, r: Real): Promise<void> {
    count(this.traffic.length + this.cancels.length > 0 ? 'gate lost, with traffic' : 'gate lost, quiet');
    if (r.kind === 'memory') {
      await restartProcess(m, r);
      await checkInvariants(m, r, `${this}`);
      return;
    }
    const cancels = [...new Set(this.cancels.filter(() => m.holds.length > 0).map((n) => m.holds[n % m.holds.length]!))];
    const purchases = this.traffic.map((t) => ({ userId: m.users[t.user]!, lines: distinct(toLines(m, t.specs)), afterMs: t.afterMs }));
    // Staggered, so that some are in their group commit when Redis empties, some land during the rebuild, some after it.
    const [results, releases] = await Promise.all([
      Promise.all(purchases.map(async (p) => {
        await sleep(p.afterMs);
        return purchase(r, p.userId, p.lines, 'order');
      })),
      Promise.all(cancels.map((h) => db.transaction((tx) => (h.orderId
        ? r.process.inventory.releaseOrder(tx, h.orderId, 'cancelled')
        : r.process.inventory.releaseHolds(tx, [h.id], 'removed_from_cart'))))),
      sleep(this.lossAtMs).then(() => deleteKeys(r.prefix)),
    ]);
    await (r.process.gate as RedisStockGate).whenReady(10_000);
    for (const [i, result] of results.entries()) {
      if (result.ok) adopt(m, purchases[i]!.userId, 'order', result);
      else if (result.reason === 'gate_unavailable') stats.unavailable++;
    }
    for (const h of releases.flat()) m.holds.find((x) => x.id === h.holdId)!.status = 'released';
    if (this.traffic.length + this.cancels.length > 0) await gateFromReal(m, r);
    else gateFromDb(m);
    await checkInvariants(m, r, `${this} → ${JSON.stringify(results.map((x) => (x.ok ? 'held' : x.reason)))}`);
  }
  toString = () => `loseGate(traffic ${JSON.stringify(this.traffic)}, cancels ${JSON.stringify(this.cancels)}, lost at ${this.lossAtMs} ms)`;
}

// ---------------------------------------------------------------------------------------------
// Generators and the property

interface Setup {
  items: Array<{ stock: number; limit: number }>;
  saleMs: number;
}

const setupArb: fc.Arbitrary<Setup> = fc.record({
  items: fc.array(fc.record({ stock: fc.integer({ min: 1, max: 6 }), limit: fc.integer({ min: 1, max: 3 }) }), { minLength: 1, maxLength: 2 }),
  saleMs: fc.constantFrom(15 * MINUTE, 2 * 3600_000),
});

const lineSpec = fc.record({ item: fc.nat({ max: 1 }), quantity: fc.integer({ min: 1, max: 3 }) });
const lineSpecs = fc.array(lineSpec, { minLength: 1, maxLength: 2 });
const user = fc.nat({ max: 2 });

function commandsArb(kind: GateKind): fc.Arbitrary<Iterable<Cmd>> {
  const attempt = fc.record({ user, specs: lineSpecs, kind: fc.constantFrom<'order' | 'cart'>('order', 'order', 'cart') });
  const reserve = attempt.map((a) => new Reserve(a.user, a.specs, a.kind));
  const release = fc.tuple(fc.nat(), fc.constantFrom<ReleaseMode>('once', 'once', 'twice', 'twice at once')).map(([n, mode]) => new Release(n, mode));
  const pay = fc.tuple(fc.nat(), fc.boolean()).map(([n, twice]) => new Pay(n, twice));
  const unsell = fc.tuple(fc.nat(), fc.boolean(), fc.boolean()).map(([n, restock, twice]) => new Unsell(n, restock, twice));
  const tick = fc.constantFrom(1000, 30_000, 4 * MINUTE, 9 * MINUTE).map((ms) => new Tick(ms));
  const expire = fc.constant(new Expire());
  const concurrently = fc.array(attempt, { minLength: 2, maxLength: 6 }).map((as) => new ReserveConcurrently(as));
  // Listed more than once: drawn more often.
  return fc.commands([
    reserve, reserve, reserve, concurrently, concurrently,
    release, release, release, pay, pay, unsell, unsell,
    fc.nat().map((n) => new CancelWhilePaying(n)),
    user.map((u) => new Checkout(u)),
    tick, tick, expire, expire,
    fc.constant(new Restart()),
    fc.record({ user, specs: lineSpecs }).map((a) => new CrashBetweenAdmitAndCommit(a.user, a.specs)),
    fc.constant(new LoseGate([], [])),
    fc.tuple(fc.integer({ min: 0, max: 3 }), fc.boolean()).map(([extra, forget]) => new CorruptGate(extra, forget)),
    ...(kind === 'redis'
      ? [fc.tuple(
        fc.array(fc.record({ user, specs: lineSpecs, afterMs: fc.constantFrom(0, 0, 2, 10, 30) }), { maxLength: 5 }),
        fc.array(fc.nat(), { maxLength: 2 }),
        fc.constantFrom(0, 1, 3, 8),
      ).map(([t, c, at]) => new LoseGate(t, c, at))]
      : []),
  ], { maxCommands: 40, size: 'max' });
}

async function runProperty(kind: GateKind, numRuns: number): Promise<void> {
  const started = performance.now();
  Object.assign(stats, { runs: 0, steps: 0, drifted: 0, unavailable: 0, byCommand: {} });
  await fc.assert(
    fc.asyncProperty(setupArb, commandsArb(kind), async (setup, cmds) => {
      // Each run starts from empty inventory tables (a fresh database costs seconds) and a fresh key prefix.
      await db.query('truncate stock_items, holds, purchase_quotas, outbox');
      const clock = new ManualClock(Date.UTC(2030, 0, 1));
      const prefix = `test-invprop-${randomUUID()}`;
      prefixes.add(prefix);
      const real: Real = { kind, clock, prefix, process: await startProcess(kind, clock, prefix) };
      try {
        const now = clock.now().getTime();
        const saleId = randomUUID();
        const items = setup.items.map((i) => ({ id: randomUUID(), initial: i.stock, limit: i.limit, startsAt: now - 1000, endsAt: now - 1000 + setup.saleMs }));
        await db.transaction((tx) => real.process.inventory.provisionStock(tx, items.map((i) => ({
          saleItemId: i.id, saleId, stock: i.initial, perUserLimit: i.limit, startsAt: new Date(i.startsAt), endsAt: new Date(i.endsAt),
        }))));
        const model: Model = { now, users: [randomUUID(), randomUUID(), randomUUID()], items, holds: [], orders: [], gate: { available: new Map(), quotas: new Map() } };
        gateFromDb(model);
        await checkInvariants(model, real, 'after the sale was created');
        await fc.asyncModelRun(() => ({ model, real }), cmds);

        // Once quiet and rebuilt, the gate equals the database exactly (gate_matches_db: "the gate agrees with the database once quiet").
        await new LoseGate([], []).run(model, real);
        const audit = await real.process.inventory.audit(true, NO_GRACE_CHECK);
        assert.deepEqual(audit.violations, [], 'the quiet audit after a rebuild');
        stats.runs++;
      } finally {
        await stopProcess(real.process);
        await deleteKeys(prefix);
        prefixes.delete(prefix);
      }
    }),
    // Shrinking a failure replays whole runs on a real database: bounded, so a failure is reported in time.
    { numRuns, includeErrorInReport: true, interruptAfterTimeLimit: 90_000 },
  );
  const commands = Object.entries(stats.byCommand).sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => `${k} ${v}`).join(', ');
  console.log(`${kind} gate: ${stats.runs} runs, ${stats.steps} steps in ${Math.round(performance.now() - started)} ms; `
    + `gate drifted after ${stats.drifted} rebuilds under traffic, ${stats.unavailable} purchases refused while the gate was lost\n  ${commands}`);
}

describe('inventory and gate, model-based', () => {
  it('when random purchases, cancels, payments, unsells, expiries, crashes and rebuilds hit inventory with the memory gate, then the audit invariants hold after every step', async () => {
    await runProperty('memory', 40);
  });

  it('when random purchases, cancels, payments, unsells, expiries, crashes and Redis losses hit inventory with the Redis gate, then the audit invariants hold after every step', async () => {
    await runProperty('redis', 30);
  });
});
