import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { Database } from './database.ts';

/** The behaviour every Database adapter must have; business code relies on nothing else. */
export function databaseContract(name: string, open: () => Promise<{ db: Database; close(): Promise<void> }>): void {
  describe(`Database contract: ${name}`, () => {
    let db: Database;
    let close: () => Promise<void>;
    const table = `contract_${randomUUID().replaceAll('-', '').slice(0, 8)}`;
    // A driver warns once per process about a use its next major version refuses (pg 9: a query
    // sent while another runs on the same connection); every test here runs with the listener on.
    const deprecations: string[] = [];
    const onWarning = (warning: Error) => void (warning.name === 'DeprecationWarning' && deprecations.push(warning.message));
    before(() => void process.on('warning', onWarning));
    after(() => void process.off('warning', onWarning));
    before(async () => {
      ({ db, close } = await open());
      await db.query(`create table ${table} (id text primary key, n integer not null check (n >= 0), big bigint, at timestamptz)`);
    });
    after(() => close());

    it('when rows are written and read, then bigint arrives as a number and timestamptz as a Date', async () => {
      const at = new Date('2030-01-02T03:04:05.678Z');
      await db.query(`insert into ${table} (id, n, big, at) values ($1, $2, $3, $4)`, ['a', 1, 9_007_199_254_740_991, at]);
      const [row] = await db.query<{ n: number; big: number; at: Date; c: number }>(`select n, big, at, (select count(*) from ${table}) as c from ${table} where id = 'a'`);
      assert.deepEqual(row, { n: 1, big: 9_007_199_254_740_991, at, c: 1 });
    });

    it('when a transaction resolves, then its writes commit and its after-commit callbacks run after', async () => {
      const seen: string[] = [];
      const result = await db.transaction(async (tx) => {
        await tx.query(`insert into ${table} (id, n) values ('b', 1)`);
        tx.afterCommit(async () => {
          const rows = await db.query(`select 1 from ${table} where id = 'b'`);
          seen.push(rows.length === 1 ? 'visible' : 'invisible');
        });
        return 42;
      });
      assert.equal(result, 42);
      assert.deepEqual(seen, ['visible']);
    });

    it('when a transaction throws, then nothing of it stays and no after-commit callback runs', async () => {
      let ran = false;
      await assert.rejects(db.transaction(async (tx) => {
        await tx.query(`insert into ${table} (id, n) values ('c', 1)`);
        tx.afterCommit(() => { ran = true; });
        throw new Error('abort');
      }), /abort/);
      assert.equal((await db.query(`select 1 from ${table} where id = 'c'`)).length, 0);
      assert.equal(ran, false);
    });

    it('when a CHECK constraint refuses an update, then the transaction fails and the row keeps its value', async () => {
      await db.query(`insert into ${table} (id, n) values ('d', 1)`);
      await assert.rejects(db.transaction((tx) => tx.query(`update ${table} set n = n - 2 where id = 'd'`)));
      assert.equal((await db.query<{ n: number }>(`select n from ${table} where id = 'd'`))[0]!.n, 1);
    });

    it('when many transactions decrement one guarded row at once, then it never goes below zero', async () => {
      await db.query(`insert into ${table} (id, n) values ('hot', 50)`);
      const outcomes = await Promise.allSettled(Array.from({ length: 120 }, () =>
        db.transaction(async (tx) => {
          const rows = await tx.query(`update ${table} set n = n - 1 where id = 'hot' and n >= 1 returning n`);
          if (rows.length === 0) throw new Error('sold out');
        })));
      assert.equal(outcomes.filter((o) => o.status === 'fulfilled').length, 50);
      assert.equal((await db.query<{ n: number }>(`select n from ${table} where id = 'hot'`))[0]!.n, 0);
    });

    it('when arrays are passed as parameters, then unnest sees them (group commit relies on it)', async () => {
      await db.query(`insert into ${table} (id, n) select i, n from unnest($1::text[], $2::int[]) as x(i, n)`, [['e1', 'e2'], [5, 6]]);
      const rows = await db.query<{ id: string; n: number }>(`select id, n from ${table} where id like 'e%' order by id`);
      assert.deepEqual(rows, [{ id: 'e1', n: 5 }, { id: 'e2', n: 6 }]);
    });

    it('when a transaction sends statements without awaiting each (a pipeline), then they run in the order sent', async () => {
      const rows = await db.transaction(async (tx) => {
        const [, , read] = await Promise.all([
          tx.query(`insert into ${table} (id, n) values ('p1', 1)`),
          tx.query(`update ${table} set n = n + 10 where id = 'p1'`),
          tx.query<{ n: number }>(`select n from ${table} where id = 'p1'`),
        ]);
        return read;
      });
      assert.deepEqual(rows, [{ n: 11 }]);
    });

    it('when one statement of a pipeline fails, then the transaction fails and none of the pipeline stays', async () => {
      await assert.rejects(db.transaction((tx) => Promise.all([
        tx.query(`insert into ${table} (id, n) values ('p2', 1)`),
        tx.query(`insert into ${table} (id, n) values ('p3', -1)`),
        tx.query(`insert into ${table} (id, n) values ('p4', 1)`),
      ])));
      assert.equal((await db.query(`select 1 from ${table} where id in ('p2', 'p3', 'p4')`)).length, 0);
      assert.equal((await db.query<{ n: number }>(`select n from ${table} where id = 'p1'`))[0]!.n, 11, 'the connection is usable after');
    });

    it('when writes are sent without waiting, then they run in order before the commit and commit with it', async () => {
      const read = await db.transaction(async (tx) => {
        tx.send(`insert into ${table} (id, n) values ('s1', 1)`);
        tx.send(`update ${table} set n = n + $1 where id = 's1'`, [4]);
        return tx.query<{ n: number }>(`select n from ${table} where id = 's1'`);
      });
      assert.deepEqual(read, [{ n: 5 }], 'a query sees the writes sent before it');
      await db.transaction(async (tx) => tx.send(`update ${table} set n = n * 2 where id = 's1'`));
      assert.equal((await db.query<{ n: number }>(`select n from ${table} where id = 's1'`))[0]!.n, 10, 'a write sent last commits');
    });

    it('when a sent write fails, then the transaction fails with its error, nothing of it stays and no after-commit runs', async () => {
      let ran = false;
      await assert.rejects(db.transaction(async (tx) => {
        await tx.query(`insert into ${table} (id, n) values ('s2', 1)`);
        tx.send(`insert into ${table} (id, n) values ('s3', 1)`);
        tx.send(`update ${table} set n = n - 5 where id = 's2'`);
        tx.send(`insert into ${table} (id, n) values ('s4', 1)`);
        tx.afterCommit(() => { ran = true; });
      }), (error: Error & { code?: string }) => error.code === '23514'); // check_violation, not "transaction aborted"
      assert.equal((await db.query(`select 1 from ${table} where id in ('s2', 's3', 's4')`)).length, 0);
      assert.equal(ran, false);
      assert.equal((await db.query<{ n: number }>(`select n from ${table} where id = 's1'`))[0]!.n, 10, 'the connection is usable after');
    });

    it('when pinged, then it answers; the committed-transaction count only grows', async () => {
      const before = db.committedTransactions;
      await db.ping();
      await db.transaction(async () => undefined);
      assert.ok(db.committedTransactions > before);
    });

    it('when every test above has pipelined, sent and committed, then the driver warned of no deprecated use', async () => {
      await new Promise((resolve) => setImmediate(resolve)); // process.emitWarning emits on a later tick
      assert.deepEqual(deprecations, []);
    });
  });
}
