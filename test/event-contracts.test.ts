import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { startHarness, until, type Harness } from './support/harness.ts';

/** Consumers check every payload against its event contract: a malformed event is dead-lettered, never applied. */
describe('event contracts at the consumers', () => {
  let h: Harness;
  before(async () => { h = await startHarness({ config: { BROKER_MAX_ATTEMPTS: 2, BROKER_BACKOFF_BASE_MS: 1 } }); });
  after(() => h.close());

  it('when an event breaking its contract is published, then its consumer dead-letters it and nothing is written', async () => {
    const messageId = randomUUID();
    await h.system.db.query(
      `insert into outbox (message_id, topic, payload, created_at, deliver_after) values ($1, 'payment.refunded', $2::jsonb, now(), now())`,
      [messageId, JSON.stringify({ orderId: randomUUID(), userId: randomUUID(), amount: 'a lot' })],
    );
    h.system.broker.nudge();
    await until(async () => (await h.system.broker.stats()).deadLetters > 0, 'the malformed event to be dead-lettered');
    const letters = await h.system.broker.listDeadLetters(10);
    const letter = letters.find((l) => l.messageId === messageId);
    assert.ok(letter, JSON.stringify(letters));
    assert.equal(letter.consumer, 'notifications');
    assert.match(letter.lastError ?? '', /breaks its contract/);
    assert.equal((await h.system.db.query('select 1 from notifications where event_id = $1', [messageId])).length, 0);
  });
});
