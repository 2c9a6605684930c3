import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setImmediate } from 'node:timers/promises';
import { pino } from 'pino';
import { ManualClock } from '../clock.ts';
import { freshDatabase } from '../../../test/support/template.ts';
import { brokerContract } from './conformance.ts';
import { InProcessBroker } from './in-process.ts';
import { writeEvents } from './outbox.ts';

brokerContract('in-process (outbox + deliveries table on PGlite)', async () => {
  const db = await freshDatabase();
  const clock = new ManualClock();
  return {
    db,
    clock,
    makeBroker: (opts) => new InProcessBroker(db, clock, pino({ level: 'silent' }), { pollMs: 10_000, ...opts }),
    // Every timer of this broker reads the clock: moving it is all it takes.
    advance: async (ms) => clock.advance(ms),
    close: () => db.close(),
  };
});

describe('in-process broker, a self-managed group with concurrency', () => {
  it('when six messages are due and the group takes four at once, then four handlers are in flight together, then two', async () => {
    const db = await freshDatabase();
    const clock = new ManualClock();
    const broker = new InProcessBroker(db, clock, pino({ level: 'silent' }), { pollMs: 10_000, maxAttempts: 3, backoffBaseMs: 10 });
    let inFlight = 0;
    const peaks: number[] = [];
    broker.consumeSelfManaged('grouping', ['g.event'], async () => {
      inFlight++;
      peaks.push(inFlight);
      await setImmediate();
      inFlight--;
    }, { concurrency: 4 });
    await broker.start();
    for (let n = 0; n < 6; n++) await writeEvents(db, clock, [{ topic: 'g.event', payload: { n } }]);
    await broker.drain();
    assert.deepEqual(peaks, [1, 2, 3, 4, 1, 2]);
    await broker.stop();
    await db.close();
  });
});
