import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { ManualClock } from '../clock.ts';
import type { Database } from '../database/database.ts';
import { writeEvents } from './outbox.ts';
import type { Broker, Handler } from './broker.ts';

export interface BrokerFixture {
  db: Database;
  /** The clock the outbox is written with (and the broker reads): deliver_after of delayed events. */
  clock: ManualClock;
  /** A broker over `db`; a second call models a restarted process. */
  makeBroker(opts: { maxAttempts: number; backoffBaseMs: number }): Broker;
  /**
   * Lets `ms` of broker time pass. For a broker whose every timer reads `clock` (in-process) that
   * is moving the clock. A broker whose retry backoff runs on wall time (RabbitMQ TTL queues) also
   * moves the clock (delayed outbox rows) and sleeps for real, scaled by `wallMs`.
   */
  advance(ms: number): Promise<void>;
  /**
   * Set when backoff runs on wall time: the real ms that `ms` of broker time takes (the fixture
   * scales backoffBaseMs the same way). Then "not yet retried" cannot be observed at an exact
   * instant, and the contract checks the measured gaps between attempts instead.
   */
  wallMs?: (ms: number) => number;
  close(): Promise<void>;
}

/**
 * The behaviour every Broker adapter must have. Effects are rows in `contract_effects`, written in
 * the handler's transaction, so "one effect" is checked in the database, not in memory.
 */
export function brokerContract(name: string, setup: () => Promise<BrokerFixture>): void {
  describe(`Broker contract: ${name}`, () => {
    let f: BrokerFixture;
    const brokers: Broker[] = [];
    before(async () => {
      f = await setup();
      await f.db.query('create table if not exists contract_effects (consumer text, message_id uuid, topic text, payload jsonb)');
    });
    after(async () => {
      for (const b of brokers) await b.stop();
      await f?.close(); // undefined when setup failed (a service down): its error is the report
    });

    function broker(maxAttempts = 3, backoffBaseMs = 1000): Broker {
      const b = f.makeBroker({ maxAttempts, backoffBaseMs });
      brokers.push(b);
      return b;
    }

    const record = (consumer: string): Handler => async (tx, message) => {
      await tx.query('insert into contract_effects values ($1, $2, $3, $4::jsonb)', [consumer, message.id, message.topic, JSON.stringify(message.payload)]);
    };

    async function effects(consumer: string): Promise<Array<{ message_id: string; topic: string; payload: { n: number } }>> {
      return f.db.query('select message_id, topic, payload from contract_effects where consumer = $1 order by (payload->>\'n\')::int', [consumer]);
    }

    async function publish(topic: string, payload: unknown, opts: { delayMs?: number; messageId?: string } = {}): Promise<void> {
      await f.db.transaction((tx) => writeEvents(tx, f.clock, [{ topic, payload, ...opts }]));
    }

    it('when an event is published, then every subscribed consumer group gets it once, by topic pattern', async () => {
      const b = broker();
      const tag = randomUUID().slice(0, 8);
      b.consume(`exact-${tag}`, [`t${tag}.created`], record(`exact-${tag}`));
      b.consume(`wild-${tag}`, [`t${tag}.*`], record(`wild-${tag}`));
      b.consume(`other-${tag}`, ['nothing.here'], record(`other-${tag}`));
      await b.start();
      await publish(`t${tag}.created`, { n: 1 });
      await publish(`t${tag}.cancelled`, { n: 2 });
      await b.drain();
      assert.deepEqual((await effects(`exact-${tag}`)).map((e) => e.payload.n), [1]);
      assert.deepEqual((await effects(`wild-${tag}`)).map((e) => e.payload.n), [1, 2]);
      assert.deepEqual(await effects(`other-${tag}`), []);
      await b.stop();
    });

    it('when the same message id is published twice, then it has one effect', async () => {
      const b = broker();
      const consumer = `dupe-${randomUUID().slice(0, 8)}`;
      b.consume(consumer, ['dupe.event'], record(consumer));
      await b.start();
      const messageId = randomUUID();
      await publish('dupe.event', { n: 1 }, { messageId });
      await b.drain();
      await publish('dupe.event', { n: 1 }, { messageId });
      await b.drain();
      assert.equal((await effects(consumer)).length, 1);
      await b.stop();
    });

    it('when a handler fails twice, then it is retried with growing backoff and succeeds once', async () => {
      const b = broker(5, 1000);
      const consumer = `retry-${randomUUID().slice(0, 8)}`;
      const attempts: number[] = [];
      const at: number[] = [];
      b.consume(consumer, ['retry.event'], async (tx, message) => {
        attempts.push(message.attempt);
        at.push(performance.now());
        if (message.attempt < 3) throw new Error(`transient failure ${message.attempt}`);
        await record(consumer)(tx, message);
      });
      // On wall time a slow machine may be further along than the broker time moved so far:
      // there only "at least these attempts" holds, and the gaps are checked below.
      const soFar = (expected: number[], message?: string) =>
        assert.deepEqual(f.wallMs ? attempts.slice(0, expected.length) : attempts, expected, message);
      await b.start();
      await publish('retry.event', { n: 1 });
      await b.drain();
      soFar([1]);
      await f.advance(999);
      await b.drain();
      if (!f.wallMs) soFar([1], 'not retried before the first backoff elapsed');
      await f.advance(1);
      await b.drain();
      soFar([1, 2]);
      await f.advance(1999);
      await b.drain();
      if (!f.wallMs) soFar([1, 2], 'the second backoff is twice the first');
      await f.advance(1);
      await b.drain();
      assert.deepEqual(attempts, [1, 2, 3]);
      if (f.wallMs) {
        // Wall time: RabbitMQ never expires a TTL early, so each gap is at least its backoff (1 ms of timer slack).
        assert.ok(at[1]! - at[0]! >= f.wallMs(1000) - 1, `not retried before the first backoff elapsed (${(at[1]! - at[0]!).toFixed(1)} ms)`);
        assert.ok(at[2]! - at[1]! >= f.wallMs(2000) - 1, `the second backoff is twice the first (${(at[2]! - at[1]!).toFixed(1)} ms)`);
      }
      assert.equal((await effects(consumer)).length, 1);
      await b.stop();
    });

    it('when a handler always fails, then the message is dead-lettered after N attempts, others are unaffected, and a replay after the fix applies it once', async () => {
      const b = broker(3, 10);
      const consumer = `poison-${randomUUID().slice(0, 8)}`;
      let fixed = false;
      b.consume(consumer, ['poison.event'], async (tx, message) => {
        if ((message.payload as { n: number }).n === 13 && !fixed) throw new Error('cannot handle 13');
        await record(consumer)(tx, message);
      });
      await b.start();
      await publish('poison.event', { n: 13 });
      await publish('poison.event', { n: 1 });
      for (let i = 0; i < 5; i++) {
        await b.drain();
        await f.advance(1000);
      }
      await b.drain();
      assert.deepEqual((await effects(consumer)).map((e) => e.payload.n), [1]);
      const dead = (await b.listDeadLetters(100)).filter((d) => d.consumer === consumer);
      assert.equal(dead.length, 1);
      assert.equal(dead[0]!.attempts, 3);
      assert.match(dead[0]!.lastError ?? '', /cannot handle 13/);
      assert.deepEqual((await b.getDeadLetter(consumer, dead[0]!.messageId))?.payload, { n: 13 });
      const before = await b.stats();
      assert.ok(before.deadLetters >= 1, 'stats count the dead letter');
      assert.equal(before.outboxPending, 0);
      assert.equal(before.deliveriesPending, 0);
      fixed = true;
      assert.equal(await b.replayDeadLetter(consumer, dead[0]!.messageId), true);
      await b.drain();
      assert.deepEqual((await effects(consumer)).map((e) => e.payload.n), [1, 13]);
      assert.equal(await b.replayDeadLetter(consumer, dead[0]!.messageId), false, 'no longer dead');
      assert.equal(await b.getDeadLetter(consumer, dead[0]!.messageId), undefined, 'no longer listed');
      assert.equal((await b.stats()).deadLetters, before.deadLetters - 1);
      await b.stop();
    });

    it('when a handler fails because the database dropped its connection, then the attempt is not counted: retried past maxAttempts, never dead-lettered, applied once', async () => {
      const b = broker(2, 10);
      const consumer = `outage-${randomUUID().slice(0, 8)}`;
      let outage = 4; // twice maxAttempts: counted, these would dead-letter the message
      const attempts: number[] = [];
      b.consume(consumer, ['outage.event'], async (tx, message) => {
        attempts.push(message.attempt);
        // What node-postgres throws when pg_terminate_backend (a failover, an admin) ends the connection.
        if (outage-- > 0) throw Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' });
        await record(consumer)(tx, message);
      });
      await b.start();
      await publish('outage.event', { n: 1 });
      for (let i = 0; i < 10 && (await effects(consumer)).length === 0; i++) {
        await b.drain();
        await f.advance(1000);
      }
      await b.drain();
      assert.deepEqual((await effects(consumer)).map((e) => e.payload.n), [1]);
      assert.deepEqual(attempts, [1, 1, 1, 1, 1], 'each failed attempt comes back with the same number');
      assert.deepEqual((await b.listDeadLetters(100)).filter((d) => d.consumer === consumer), []);
      await b.stop();
    });

    it('when a message is delayed, then it is delivered only once its time has come', async () => {
      const b = broker();
      const consumer = `delay-${randomUUID().slice(0, 8)}`;
      b.consume(consumer, ['delayed.event'], record(consumer));
      await b.start();
      await publish('delayed.event', { n: 1 }, { delayMs: 60_000 });
      await b.drain();
      assert.equal((await effects(consumer)).length, 0);
      await f.advance(59_000);
      await b.drain();
      assert.equal((await effects(consumer)).length, 0, 'not before its time');
      await f.advance(1_000);
      await b.drain();
      assert.equal((await effects(consumer)).length, 1);
      await b.stop();
    });

    it('when events are written while no broker runs, then a broker started later delivers them', async () => {
      const consumer = `restart-${randomUUID().slice(0, 8)}`;
      await publish('restart.event', { n: 1 });
      await publish('restart.event', { n: 2 });
      const b = broker();
      b.consume(consumer, ['restart.event'], record(consumer));
      await b.start();
      await b.drain();
      assert.deepEqual((await effects(consumer)).map((e) => e.payload.n), [1, 2]);
      await b.stop();
    });

    it('when a self-managed handler fails once, then it runs again and, once it succeeded, never again', async () => {
      const b = broker(3, 10);
      const consumer = `self-${randomUUID().slice(0, 8)}`;
      const runs: number[] = [];
      b.consumeSelfManaged(consumer, ['self.event'], async (message) => {
        runs.push(message.attempt);
        if (message.attempt === 1) throw new Error('provider timeout');
        await f.db.query('insert into contract_effects values ($1, $2, $3, $4::jsonb)', [consumer, message.id, message.topic, JSON.stringify(message.payload)]);
      });
      await b.start();
      await publish('self.event', { n: 1 });
      await b.drain();
      await f.advance(10);
      await b.drain();
      await f.advance(1000);
      await b.drain();
      assert.deepEqual(runs, [1, 2]);
      assert.equal((await effects(consumer)).length, 1);
      await b.stop();
    });

    it('when a self-managed group takes messages several at once and one of them fails, then each succeeds exactly once and only the failed one runs again', async () => {
      const b = broker(3, 10);
      const consumer = `grouped-${randomUUID().slice(0, 8)}`;
      const runs: Array<{ n: number; attempt: number }> = [];
      b.consumeSelfManaged(consumer, ['grouped.event'], async (message) => {
        const n = (message.payload as { n: number }).n;
        runs.push({ n, attempt: message.attempt });
        if (n === 3 && message.attempt === 1) throw new Error('provider timeout');
        await f.db.query('insert into contract_effects values ($1, $2, $3, $4::jsonb)', [consumer, message.id, message.topic, JSON.stringify(message.payload)]);
      }, { concurrency: 4 });
      await b.start();
      for (let n = 1; n <= 6; n++) await publish('grouped.event', { n });
      await b.drain();
      await f.advance(10);
      await b.drain();
      await f.advance(1000);
      await b.drain();
      assert.deepEqual((await effects(consumer)).map((e) => e.payload.n), [1, 2, 3, 4, 5, 6]);
      assert.deepEqual(runs.filter((r) => r.n !== 3).map((r) => r.attempt), [1, 1, 1, 1, 1]);
      assert.deepEqual(runs.filter((r) => r.n === 3).map((r) => r.attempt), [1, 2]);
      await b.stop();
    });

    it('when messages wait for a busy consumer group, then queueDepths lists the group with them, and none once they are handled', async () => {
      const b = broker(3, 10);
      const consumer = `depth-${randomUUID().slice(0, 8)}`;
      let release!: () => void;
      const gate = new Promise<void>((resolve) => { release = resolve; });
      b.consumeSelfManaged(consumer, [`${consumer}.event`], async () => gate);
      await b.start();
      // More than any adapter takes in flight at once (RabbitMQ: the prefetch), so some stay ready.
      for (let n = 1; n <= 40; n++) await publish(`${consumer}.event`, { n });
      const waiting = async () => (await b.queueDepths()).find((q) => q.consumer === consumer)?.work ?? 0;
      const deadline = Date.now() + 10_000;
      while ((await waiting()) === 0) {
        assert.ok(Date.now() < deadline, 'queueDepths never showed the waiting messages');
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      release();
      await b.drain();
      assert.deepEqual((await b.queueDepths()).find((q) => q.consumer === consumer), { consumer, work: 0, dead: 0 });
      await b.stop();
    });

    it('when a handler throws, then its partial writes are rolled back with it', async () => {
      const b = broker(1, 10);
      const consumer = `atomic-${randomUUID().slice(0, 8)}`;
      b.consume(consumer, ['atomic.event'], async (tx, message) => {
        await record(consumer)(tx, message);
        throw new Error('fails after writing');
      });
      await b.start();
      await publish('atomic.event', { n: 1 });
      await b.drain();
      assert.equal((await effects(consumer)).length, 0);
      await b.stop();
    });
  });
}
