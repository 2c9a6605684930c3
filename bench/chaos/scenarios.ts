/**
 * The faults of the drill, one scenario each. A scenario gets a running cluster, drives a flash sale
 * (rush, then pay / cancel / let expire) and injects its fault while it runs; the runner then lets
 * the system settle and measures. Each returns what the clients were told, and figures of its own.
 */
import pg from 'pg';
import { deleteRedisKeys } from '../targets.ts';
import type { ChaosCluster, ClusterOptions } from './cluster.ts';
import { clearQueuePolicy, deleteQueue, killDatabaseConnections, queueDepth, setQueuePolicy, startRabbitMq, stopRabbitMq } from './faults.ts';
import { LEDGER_CONSUMER, LEDGER_PREFETCH, startLedger, type Ledger } from './ledger.ts';
import type { Expectations } from './measure.ts';
import { splitWinners } from '../buyers.ts';
import { buyers, cancel, pay, rush, type Buyer, type PlacedOrder, type RushOptions, type RushResult } from './traffic.ts';

export interface Scale {
  /** Units on sale. */
  units: number;
  /** Buyers in the rush (more than the units: the sale sells out). */
  buyers: number;
  /** The payment window, in seconds. */
  windowS: number;
  /** How long the RabbitMQ outage lasts. */
  outageMs: number;
}

export const SCALES: Record<'short' | 'long', Scale> = {
  short: { units: 30, buyers: 60, windowS: 6, outageMs: 5_000 },
  long: { units: 300, buyers: 1_500, windowS: 20, outageMs: 10_000 },
};

export interface ScenarioContext {
  cluster: ChaosCluster;
  scale: Scale;
  /** Progress lines for the terminal. */
  say(line: string): void;
}

export interface ScenarioOutcome extends Expectations {
  /** When the fault was over (epoch ms): settling is timed from here. */
  faultEndedAt: number;
  notes: Record<string, number | string>;
  /** Scenario checks that did not hold (e.g. the fault never bit). */
  problems: string[];
}

export interface Scenario {
  name: string;
  fault: string;
  expected: string;
  cluster: Omit<ClusterOptions, 'engines'>;
  run(ctx: ScenarioContext): Promise<ScenarioOutcome>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what} after ${timeoutMs / 1000} s`);
    await sleep(100);
  }
}

interface Sale {
  rushed: RushResult;
  paid: PlacedOrder[];
  /** Answers to the payment and cancel calls, by `<call> <status> <code>`. */
  answers: Record<string, number>;
}

/** A sale open now: one item with the scale's units, one per buyer. Returns the sale item's id. */
async function openSale(ctx: ScenarioContext, windowS = ctx.scale.windowS): Promise<string> {
  const [itemId] = await ctx.cluster.createSale([{ stock: ctx.scale.units, perUserLimit: 1 }], windowS);
  return itemId!;
}

/**
 * The common sale: one item, twice as many buyers as units rushing in waves, then 60% of the
 * winners pay and 10% cancel (concurrently with `duringPayments`), the rest let the window pass.
 */
async function sale(ctx: ScenarioContext, opts: { rush?: RushOptions; duringPayments?: () => Promise<void>; windowS?: number } = {}): Promise<Sale> {
  const itemId = await openSale(ctx, opts.windowS);
  // Waves of a third of the units each: the item sells out in the third, so a fault injected after
  // the first or second lands while units are still being sold, at every scale.
  const waves = Math.ceil(ctx.scale.buyers / Math.max(1, Math.floor(ctx.scale.units / 3)));
  const rushed = await rush(ctx.cluster, itemId, buyers(ctx.cluster, ctx.scale.buyers), { waves, gapMs: 150, ...opts.rush });
  ctx.say(`rush: ${JSON.stringify(rushed.statuses)}`);
  const { payers, cancellers } = splitWinners(rushed.accepted);
  const answers: Record<string, number> = {};
  const [paid, cancelled] = await Promise.all([pay(ctx.cluster, payers, 16, answers), cancel(ctx.cluster, cancellers, 8, answers), opts.duringPayments?.()]);
  ctx.say(`paid ${paid.length}, cancelled ${cancelled.length}, left to expire ${rushed.accepted.length - paid.length - cancelled.length}; ${JSON.stringify(answers)}`);
  return { rushed, paid, answers };
}

/** A 5xx other than 503 (which says "retry after"): never a right answer, whatever the fault. */
const serverErrors = (s: Sale): string[] =>
  [...Object.entries(s.rushed.statuses).map(([status, n]) => [`order ${status}`, n] as const), ...Object.entries(s.answers)]
    .filter(([key]) => / 5\d\d/.test(key) && !key.includes(' 503')).map(([key, n]) => `${n} × ${key}`);

const outcome = (s: Sale, faultEndedAt: number, notes: Record<string, number | string> = {}, problems: string[] = []): ScenarioOutcome => ({
  accepted: s.rushed.accepted, paid: s.paid, faultEndedAt,
  notes: { ...notes, order_answers: JSON.stringify(s.rushed.statuses), retried_after: JSON.stringify(s.rushed.shed), payment_answers: JSON.stringify(s.answers) },
  problems: [...problems, ...serverErrors(s)],
});

/** Answers a client can get from a healthy or degraded system: anything else (a 500, a 502) is a problem. */
function unexpectedAnswers(statuses: Record<string, number>, allowed: readonly string[]): string[] {
  return Object.entries(statuses).filter(([status]) => !allowed.includes(status)).map(([status, n]) => `${n} answers with status ${status}`);
}

const workerKill: Scenario = {
  name: 'worker-kill',
  fault: 'a worker SIGKILLed mid-message, repeatedly',
  expected: 'redelivered, processed once, audit clean',
  cluster: { apis: 1, workers: 2 },
  async run(ctx) {
    let kills = 0;
    const killWorker = async () => {
      await ctx.cluster.kill('worker-1');
      kills++;
      await ctx.cluster.startMember('worker', 1);
    };
    const s = await sale(ctx, {
      rush: { afterWave: (i) => (i === 1 ? killWorker() : undefined) },
      duringPayments: async () => {
        await sleep(100);
        await killWorker();
      },
    });
    // The third kill lands while the deadlines fire: expiries, releases and notices in flight.
    const firstDue = await ctx.cluster.count(`select extract(epoch from min(expires_at)) * 1000 as n from orders`);
    await sleep(Math.max(0, firstDue - Date.now() + 300));
    await killWorker();
    return outcome(s, Date.now(), { kills });
  },
};

const apiKill: Scenario = {
  name: 'api-kill',
  fault: 'an API process SIGKILLed mid-burst',
  expected: 'every 201 the clients got exists; no hold without an order',
  cluster: { apis: 2, workers: 1 },
  async run(ctx) {
    let killed: Promise<void> | undefined;
    const s = await sale(ctx, {
      rush: {
        connections: 16,
        afterWave: (i) => {
          // Not awaited here: the kill lands while the next wave's requests are in flight on api-2.
          if (i === 2) killed = sleep(20).then(() => ctx.cluster.kill('api-2'));
        },
      },
    });
    if (!killed) throw new Error('the rush ended before its third wave: api-2 was never killed');
    await killed;
    await ctx.cluster.startMember('api', 2);
    return outcome(s, Date.now(), { no_answer: s.rushed.statuses['0'] ?? 0 }, unexpectedAnswers(s.rushed.statuses, ['0', '201', '409']));
  },
};

const rabbitmqStop: Scenario = {
  name: 'rabbitmq-stop',
  fault: 'RabbitMQ stopped for a while (10 s in the long run) and started',
  expected: 'publishers buffer in the outbox, consumers reconnect, nothing lost',
  cluster: { apis: 1, workers: 1 },
  async run(ctx) {
    let stoppedAt = 0;
    let ordersAtStop = 0;
    let acceptedDuringOutage = 0;
    let started: Promise<void> | undefined;
    const restartLater = async () => {
      await sleep(Math.max(0, stoppedAt + ctx.scale.outageMs - Date.now()));
      acceptedDuringOutage = (await ctx.cluster.count('select count(*) as n from orders')) - ordersAtStop;
      await startRabbitMq(ctx.cluster.env.AMQP_URL!);
    };
    let s: Sale;
    try {
      s = await sale(ctx, {
        rush: {
          afterWave: async (i) => {
            if (i !== 2) return;
            await stopRabbitMq();
            stoppedAt = Date.now();
            ordersAtStop = await ctx.cluster.count('select count(*) as n from orders');
            started = restartLater();
          },
        },
      });
      await started;
    } finally {
      await startRabbitMq(ctx.cluster.env.AMQP_URL!);
    }
    const problems = acceptedDuringOutage > 0 ? [] : ['no order was accepted while RabbitMQ was down: the outage missed the rush'];
    return outcome(s, Date.now(), { outage_ms: ctx.scale.outageMs, accepted_during_outage: acceptedDuringOutage }, [...problems, ...unexpectedAnswers(s.rushed.statuses, ['201', '409'])]);
  },
};

const redisFlush: Scenario = {
  name: 'redis-flush',
  fault: 'Redis data lost (the cluster\'s keys deleted) mid-sale',
  expected: 'gate rebuilt from PostgreSQL before admitting; 0 oversold',
  cluster: { apis: 2, workers: 1 },
  async run(ctx) {
    let flushedAt = 0;
    const s = await sale(ctx, {
      rush: {
        afterWave: async (i) => {
          if (i !== 2) return;
          await deleteRedisKeys(ctx.cluster.env.REDIS_URL!, `${ctx.cluster.namespace}:`);
          flushedAt = Date.now();
        },
      },
    });
    const sold = await ctx.cluster.count(`select coalesce(sum(quantity), 0) as n from holds where status in ('held', 'sold')`);
    const problems = s.rushed.accepted.length === ctx.scale.units ? [] : [`${s.rushed.accepted.length} orders accepted for ${ctx.scale.units} units: the sale did not sell out exactly`];
    return outcome(s, flushedAt, { units_taken: sold, fenced_503: s.rushed.shed['503'] ?? 0 }, [...problems, ...unexpectedAnswers(s.rushed.statuses, ['201', '409'])]);
  },
};

const postgresKill: Scenario = {
  name: 'postgres-kill',
  fault: 'PostgreSQL connections killed (pg_terminate_backend) again and again',
  expected: 'requests fail cleanly (503), retried work completes, nothing half-written',
  cluster: { apis: 1, workers: 1 },
  async run(ctx) {
    let killing = false;
    let killed = 0;
    let killer: Promise<void> | undefined;
    const adminUrl = ctx.cluster.options.engines.postgresUrl;
    const startKilling = () => {
      killing = true;
      killer = (async () => {
        while (killing) {
          killed += await killDatabaseConnections(adminUrl, ctx.cluster.namespace).catch(() => 0);
          await sleep(100);
        }
      })();
    };
    const s = await sale(ctx, {
      rush: { afterWave: (i) => (i === 1 ? startKilling() : undefined) },
      duringPayments: async () => {
        await sleep(1000);
        killing = false;
        await killer;
      },
    });
    killing = false;
    await killer;
    const problems = killed > 0 ? [] : ['no connection was killed'];
    return outcome(s, Date.now(), { connections_killed: killed, shed_503: s.rushed.shed['503'] ?? 0 }, [...problems, ...unexpectedAnswers(s.rushed.statuses, ['201', '409'])]);
  },
};

const pspFaults: Scenario = {
  name: 'psp-faults',
  fault: 'PSP: 30% webhooks dropped, 20% duplicated, out of order, 2 s latency, 10% timeouts',
  expected: 'every paid order PAID once; every unpaid one expired; late payments refunded',
  cluster: {
    apis: 1, workers: 1,
    env: { PSP_WEBHOOK_DROP_RATE: '0.3', PSP_WEBHOOK_DUPLICATE_RATE: '0.2', PSP_WEBHOOK_REORDER: 'true', PSP_LATENCY_MS: '2000', PSP_TIMEOUT_RATE: '0.1', PSP_TIMEOUT_MS: '4000' },
  },
  async run(ctx) {
    const s = await sale(ctx);
    return outcome(s, Date.now());
  },
};

async function withLedger<T>(ctx: ScenarioContext, chokeOn: ReadonlySet<string>, work: (ledger: Ledger) => Promise<T>): Promise<T> {
  const ledger = await startLedger({ databaseUrl: ctx.cluster.databaseUrl, amqpUrl: ctx.cluster.env.AMQP_URL!, prefix: ctx.cluster.namespace, chokeOn, maxAttempts: MAX_ATTEMPTS });
  try {
    return await work(ledger);
  } finally {
    await ledger.stop().catch(() => {});
  }
}

const MAX_ATTEMPTS = 4;

async function replayDeadLetters(ctx: ScenarioContext, consumer: string): Promise<number> {
  const rows = await ctx.cluster.query<{ message_id: string }>('select message_id from dead_letters where consumer = $1 and replayed_at is null', [consumer]);
  for (const { message_id } of rows) {
    const res = await fetch(`${ctx.cluster.apiUrls[0]}/v1/admin/dead-letters/${consumer}/${message_id}/replay`, { method: 'POST', headers: { authorization: `Bearer ${ctx.cluster.adminToken()}` } });
    if (res.status >= 300) throw new Error(`replay of ${message_id} answered ${res.status}: ${await res.text()}`);
  }
  return rows.length;
}

/** Problems with the ledger's books: every accepted order applied exactly once. */
function ledgerProblems(ledger: Ledger, accepted: readonly PlacedOrder[]): string[] {
  const missing = accepted.filter((o) => !ledger.applied.has(o.orderId)).length;
  const twice = [...ledger.applied.values()].filter((n) => n > 1).length;
  return [...(missing ? [`lost: ${missing} order events the ledger never applied`] : []), ...(twice ? [`doubled: ${twice} order events applied twice`] : [])];
}

/**
 * The ledger scenarios' sale: one rush wave, then the winners pay and cancel as usual — except the
 * poisoned buyers, whose orders are left alone (their events are the ones the ledger chokes on).
 */
async function saleWithPoisonedBuyers(ctx: ScenarioContext, who: readonly Buyer[], poisoned: ReadonlySet<string>): Promise<{ accepted: PlacedOrder[]; paid: PlacedOrder[]; poisonedOrders: PlacedOrder[] }> {
  const itemId = await openSale(ctx);
  const rushed = await rush(ctx.cluster, itemId, who, { waves: 1 });
  const { payers, cancellers } = splitWinners(rushed.accepted.filter((o) => !poisoned.has(o.userId)));
  const [paid] = await Promise.all([pay(ctx.cluster, payers), cancel(ctx.cluster, cancellers)]);
  return { accepted: rushed.accepted, paid, poisonedOrders: rushed.accepted.filter((o) => poisoned.has(o.userId)) };
}

const ledgerDeadLetters = (ctx: ScenarioContext) => ctx.cluster.count(`select count(*) as n from dead_letters where consumer = '${LEDGER_CONSUMER}'`);

/** The bug is fixed: every dead letter is replayed through the admin API, and each applies. */
async function fixAndReplay(ctx: ScenarioContext, ledger: Ledger, poisonedOrders: readonly PlacedOrder[]): Promise<number> {
  ledger.fix();
  const replayed = await replayDeadLetters(ctx, LEDGER_CONSUMER);
  await ledger.when('the replayed messages applied', () => poisonedOrders.every((o) => ledger.applied.has(o.orderId)), 30_000);
  return replayed;
}

const poison: Scenario = {
  name: 'poison-message',
  fault: 'a poison message (a consumer that always throws for one order)',
  expected: 'dead-lettered after N attempts, others unaffected, replay after the fix succeeds',
  cluster: { apis: 1, workers: 1 },
  async run(ctx) {
    const who = buyers(ctx.cluster, ctx.scale.buyers);
    const poisoned = who[0]!;
    return withLedger(ctx, new Set([poisoned.userId]), async (ledger) => {
      const { accepted, paid, poisonedOrders } = await saleWithPoisonedBuyers(ctx, who, new Set([poisoned.userId]));
      const poisonOrder = poisonedOrders[0];
      if (!poisonOrder) throw new Error('the poisoned buyer got no order');
      await until('the poison message dead-lettered', async () => (await ledgerDeadLetters(ctx)) === 1, 60_000);
      const othersApplied = accepted.filter((o) => o !== poisonOrder && ledger.applied.get(o.orderId) === 1).length;
      const replayed = await fixAndReplay(ctx, ledger, poisonedOrders);
      const attempts = ledger.attempts.get(poisonOrder.orderId) ?? 0;
      const problems = [
        ...(attempts === MAX_ATTEMPTS + 1 ? [] : [`the poison message was handled ${attempts} times, expected ${MAX_ATTEMPTS} failures then 1 replay`]),
        ...(othersApplied === accepted.length - 1 ? [] : [`only ${othersApplied} of the other ${accepted.length - 1} orders were applied while the poison message was failing`]),
        ...ledgerProblems(ledger, accepted),
      ];
      return { accepted, paid, faultEndedAt: Date.now(), notes: { attempts_before_dead: MAX_ATTEMPTS, replayed, others_applied_before_fix: othersApplied }, problems };
    });
  },
};

const clockJump: Scenario = {
  name: 'clock-jump',
  fault: 'clock jump forward past every deadline (every API and worker restarted 2 h ahead)',
  expected: 'all expire once, stock back, no double release',
  cluster: { apis: 1, workers: 2 },
  async run(ctx) {
    // A window no order reaches by itself: only the jump can expire them.
    const s = await sale(ctx, { windowS: 3600 });
    await until('every payment applied', async () => (await ctx.cluster.count(`select count(*) as n from orders where status = 'PAID'`)) >= s.paid.length, 60_000);
    const jump = { CLOCK_OFFSET_MS: String(2 * 3600_000) };
    await Promise.all(ctx.cluster.members.filter((m) => m.role !== 'psp').map((m) => ctx.cluster.restart(m.name, jump)));
    const jumpedAt = Date.now();
    return outcome(s, jumpedAt, { jump_s: 7200 });
  },
};

/**
 * Holds a lock that makes inserts into `dead_letters` wait: the broker's recorder cannot take
 * messages off the dead-letter queue, so the queue's length limit is reached — a full queue.
 */
async function blockDeadLetterRecording(databaseUrl: string): Promise<() => Promise<void>> {
  const client = new pg.Client({ connectionString: databaseUrl });
  client.on('error', () => {});
  await client.connect();
  await client.query('begin');
  await client.query('lock table dead_letters in exclusive mode');
  return async () => {
    await client.query('commit').catch(() => {});
    await client.end().catch(() => {});
  };
}

const deadLetterTarget: Scenario = {
  name: 'dead-letter-target',
  fault: 'the dead-letter queue deleted, then full (a length limit refusing publishes while recording is blocked)',
  expected: 'dead-lettered messages stay in their source queue until it takes them, 0 lost',
  cluster: { apis: 1, workers: 1 },
  async run(ctx) {
    const who = buyers(ctx.cluster, ctx.scale.buyers);
    // More than the recorder's prefetch: while recording is blocked it holds that many unacked, the
    // rest wait as ready messages, and only ready messages count against the length limit.
    const poisoned = new Set(who.slice(0, LEDGER_PREFETCH + 4).map((b) => b.userId));
    const policy = `${ctx.cluster.namespace}-dlq-full`;
    return withLedger(ctx, poisoned, async (ledger) => {
      await deleteQueue(ctx.cluster.env.AMQP_URL!, ledger.deadLetterQueue);
      await setQueuePolicy(policy, ledger.deadLetterQueue, { 'max-length': 0, overflow: 'reject-publish' });
      const unblock = await blockDeadLetterRecording(ctx.cluster.databaseUrl);
      let heldInSource = 0;
      let s: Awaited<ReturnType<typeof saleWithPoisonedBuyers>>;
      try {
        s = await saleWithPoisonedBuyers(ctx, who, poisoned);
        // Refused by the full queue: the broker holds the message (unacked in its source queue) and retries.
        await ledger.when('a dead letter refused by the full queue', () => ledger.logged(REFUSED) > 0, 60_000);
        // RabbitMQ refreshes queue statistics every few seconds: poll while the message is held.
        await until('the refused dead letter seen unacked in its source queue', async () => (heldInSource = (await queueDepth(ledger.workQueue)).unacked) > 0, 20_000).catch(() => {});
      } finally {
        await unblock();
        await clearQueuePolicy(policy).catch(() => {});
      }
      await until('every poison message dead-lettered', async () => (await ledgerDeadLetters(ctx)) === s.poisonedOrders.length, 60_000);
      const replayed = await fixAndReplay(ctx, ledger, s.poisonedOrders);
      // Deleting the queue cuts the ledger's consumer off it: the broker reconnects and declares it again (or, had a
      // dead letter been sent meanwhile, finds it unroutable and does the same).
      const missingTarget = ledger.logged('no queue took a failed message') + ledger.logged('connection or channel lost');
      const problems = [
        ...(missingTarget > 0 ? [] : ['the missing dead-letter queue was never noticed']),
        ...(heldInSource > 0 ? [] : ['no refused dead letter was seen held in its source queue']),
        ...ledgerProblems(ledger, s.accepted),
      ];
      return {
        accepted: s.accepted, paid: s.paid, faultEndedAt: Date.now(), problems,
        notes: { poisoned: s.poisonedOrders.length, unroutable: missingTarget, refused_by_full_queue: ledger.logged(REFUSED), held_in_source: heldInSource, replayed },
      };
    });
  },
};

/** What the broker logs when a queue refuses a dead letter (see RabbitMqBroker's sendOff). */
const REFUSED = 'could not park a failed message yet';

const webhookRace: Scenario = {
  name: 'webhook-race',
  fault: 'payment webhooks racing the deadline close (buyers press Pay around their deadline)',
  expected: 'one terminal state per order; a refund when the payment landed after the close',
  cluster: { apis: 1, workers: 1, env: { PSP_WEBHOOK_DELAY_MS: '300' } },
  async run(ctx) {
    const itemId = await openSale(ctx);
    const rushed = await rush(ctx.cluster, itemId, buyers(ctx.cluster, ctx.scale.buyers), { waves: 1 });
    const deadlines = new Map((await ctx.cluster.query<{ id: string; due: string }>(`select id, extract(epoch from expires_at) * 1000 as due from orders`)).map((r) => [r.id, Number(r.due)]));
    // Each buyer presses Pay between 600 ms before and 600 ms after its own deadline.
    const paid = (await Promise.all(rushed.accepted.map(async (order, i) => {
      const at = deadlines.get(order.orderId)! - 600 + ((i * 1200) / rushed.accepted.length);
      await sleep(Math.max(0, at - Date.now()));
      return (await pay(ctx.cluster, [order], 1))[0];
    }))).filter((o): o is PlacedOrder => o !== undefined);
    ctx.say(`paid ${paid.length} of ${rushed.accepted.length} around their deadlines`);
    return { accepted: rushed.accepted, paid, faultEndedAt: Date.now(), notes: { pressed_pay: rushed.accepted.length, pay_taken: paid.length }, problems: [] };
  },
};

const saleCancel: Scenario = {
  name: 'sale-cancel',
  fault: 'the merchant cancels the sale in the middle of the rush, after some winners paid and while others pay',
  expected: 'no oversell; nobody admitted after the cancel; every pending order closed, its payment voided or refunded; audit and money clean',
  cluster: { apis: 2, workers: 1 },
  async run(ctx) {
    const { saleId, itemIds, merchantToken } = await ctx.cluster.createManagedSale([{ stock: ctx.scale.units, perUserLimit: 1 }], ctx.scale.windowS);
    const who = buyers(ctx.cluster, ctx.scale.buyers);
    const answers: Record<string, number> = {};
    // A first wave sells a third of the units. Half its winners pay and their payments are applied
    // (their orders must stand, and their money reconcile); the other half start paying, and the
    // cancel lands through the other API while their payments are in flight and the crowd arrives.
    const first = await rush(ctx.cluster, itemIds[0]!, who.slice(0, Math.floor(ctx.scale.units / 3)), { waves: 1 });
    const [early, racing] = [first.accepted.filter((_, i) => i % 2 === 0), first.accepted.filter((_, i) => i % 2 === 1)];
    const paidEarly = await pay(ctx.cluster, early, 16, answers);
    await until('the early payments applied', async () => (await ctx.cluster.count(`select count(*) as n from orders where status = 'PAID'`)) >= paidEarly.length, 60_000);
    const paying = pay(ctx.cluster, racing, 16, answers);
    await sleep(50);
    const paidBeforeCancel = await ctx.cluster.count(`select count(*) as n from orders where status = 'PAID'`);
    const cancelling = sleep(30).then(async () => (await fetch(`${ctx.cluster.apiUrls[1]}/v1/flash-sales/${saleId}/cancel`, { method: 'POST', headers: { authorization: `Bearer ${merchantToken}` } })).status);
    const [rest, cancelStatus, paidRacing] = await Promise.all([rush(ctx.cluster, itemIds[0]!, who.slice(Math.floor(ctx.scale.units / 3)), { waves: 2, gapMs: 150 }), cancelling, paying]);
    const paid = [...paidEarly, ...paidRacing];
    const rushed = { accepted: [...first.accepted, ...rest.accepted], statuses: { ...first.statuses } };
    for (const [status, n] of Object.entries(rest.statuses)) rushed.statuses[status] = (rushed.statuses[status] ?? 0) + n;
    ctx.say(`rush: ${JSON.stringify(rushed.statuses)}; cancel answered ${cancelStatus}; paid ${paid.length} (${paidBeforeCancel} PAID when it was sent); ${JSON.stringify(answers)}`);
    await until('every order of the cancelled sale closed', async () => (await ctx.cluster.count(`select count(*) as n from orders where status = 'PENDING_PAYMENT'`)) === 0, 60_000);
    const afterCancel = await ctx.cluster.count(`select count(*) as n from orders where created_at > (select cancelled_at from flash_sales where id = $1)`, [saleId]);
    const problems = [
      ...(cancelStatus === 200 ? [] : [`the cancel answered ${cancelStatus}`]),
      ...(afterCancel === 0 ? [] : [`${afterCancel} orders created after the cancel`]),
      ...(rushed.statuses['409'] ? [] : ['no purchase was refused: the cancel missed the rush']),
      ...(paidBeforeCancel > 0 ? [] : ['no order was paid before the cancel: that paid orders stand went untried']),
      ...unexpectedAnswers(rushed.statuses, ['201', '409']),
    ];
    const closed = await ctx.cluster.count(`select count(*) as n from orders where closed_reason = 'sale_cancelled'`);
    return { accepted: rushed.accepted, paid, faultEndedAt: Date.now(), notes: { closed_by_cancel: closed, paid_before_cancel: paidBeforeCancel, order_answers: JSON.stringify(rushed.statuses) }, problems };
  },
};

/** In the order of the table. */
export const SCENARIOS: readonly Scenario[] = [workerKill, apiKill, rabbitmqStop, redisFlush, postgresKill, pspFaults, poison, clockJump, deadLetterTarget, webhookRace, saleCancel];
