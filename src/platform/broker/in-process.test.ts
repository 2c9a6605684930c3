import { pino } from 'pino';
import { ManualClock } from '../clock.ts';
import { freshDatabase } from '../../../test/support/template.ts';
import { brokerContract } from './conformance.ts';
import { InProcessBroker } from './in-process.ts';

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
