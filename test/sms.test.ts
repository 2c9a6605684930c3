import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { createSmsSimServer, type SimMessage, type SmsSimServer } from '../src/sms-sim/server.ts';
import { scalar, startHarness, testConfig, until, type Harness } from './support/harness.ts';

const SMS_KEY = 'sms_test_key_for_this_suite';

describe('SMS notices through the sms-sim provider (a real HTTP server)', () => {
  let h: Harness;
  let sim: SmsSimServer;
  let simUrl: string;
  let nextNumber = 0;

  before(async () => {
    sim = await createSmsSimServer({ config: testConfig({ SMS_API_KEY: SMS_KEY }) });
    simUrl = await sim.listen({ host: '127.0.0.1', port: 0 });
    h = await startHarness({ config: { SMS_URL: simUrl, SMS_API_KEY: SMS_KEY, SMS_TIMEOUT_MS: 300, BROKER_BACKOFF_BASE_MS: 50, BROKER_MAX_ATTEMPTS: 20 } });
  });
  after(async () => {
    await h.close();
    await sim.close();
  });

  /** A registered buyer (the phone lives on the account) and a number of their own. */
  async function buyer(): Promise<{ token: string; userId: string; phone: string }> {
    const user = await h.system.accounts.register(`sms-${randomUUID()}@test.local`, 'sms-password-1');
    const phone = `+1415555${String(2600 + nextNumber++).padStart(4, '0')}`;
    return { token: h.system.tokens.issue({ userId: user.id, role: 'buyer' }), userId: user.id, phone };
  }

  async function optIn(b: { token: string; phone: string }): Promise<void> {
    const res = await h.http.request('PUT', '/v1/me/phone', { token: b.token, body: { phone: b.phone } });
    assert.equal(res.status, 200, JSON.stringify(res.body));
  }

  async function textsTo(phone: string): Promise<SimMessage[]> {
    const res = await fetch(`${simUrl}/v1/messages?to=${encodeURIComponent(phone)}`, { headers: { authorization: `Bearer ${SMS_KEY}` } });
    return ((await res.json()) as { data: SimMessage[] }).data;
  }

  async function knobs(values: Record<string, number>): Promise<void> {
    const res = await fetch(`${simUrl}/_sim/knobs`, { method: 'POST', headers: { authorization: `Bearer ${SMS_KEY}`, 'content-type': 'application/json' }, body: JSON.stringify(values) });
    assert.equal(res.status, 200);
  }

  /** An order placed and cancelled by the buyer: its `order.cancelled` notice is one of the SMS kinds. */
  async function cancelledOrder(token: string): Promise<string> {
    const { sale } = await h.createSale({ items: [{ stock: 5 }] });
    const order = await h.placeOrder(token, sale.items[0]!.id);
    const res = await h.http.request('POST', `/v1/orders/${order}/cancel`, { token });
    assert.equal(res.status, 200);
    return order;
  }

  const smsRows = (userId: string, status: string) =>
    scalar(h.system, `select count(*) from notifications where user_id = $1 and channel = 'sms' and status = $2`, [userId, status]);

  it('when a buyer sets a phone number, then it is validated and stored as E.164; deleting it opts out', async () => {
    const b = await buyer();
    for (const phone of ['12345', '+1 000 000 0000', 'call me', '+447700900123']) {
      const res = await h.http.request('PUT', '/v1/me/phone', { token: b.token, body: { phone } });
      assert.equal(res.status, 422, `${phone}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.error.code, 'validation_failed');
    }
    const set = await h.http.request('PUT', '/v1/me/phone', { token: b.token, body: { phone: '+1 (415) 555-2671' } });
    assert.deepEqual([set.status, set.body], [200, { phone: '+14155552671' }]);
    assert.equal(await h.system.accounts.phoneOf(b.userId), '+14155552671');
    assert.equal((await h.http.request('DELETE', '/v1/me/phone', { token: b.token })).status, 204);
    assert.equal(await h.system.accounts.phoneOf(b.userId), undefined);
    const ghost = await h.http.request('PUT', '/v1/me/phone', { token: h.buyerToken().token, body: { phone: '+14155552671' } });
    assert.equal(ghost.status, 404);
    const merchant = (await h.createSale()).merchantToken;
    assert.equal((await h.http.request('PUT', '/v1/me/phone', { token: merchant, body: { phone: '+14155552671' } })).status, 403);
  });

  it('when an opted-in buyer\'s order is cancelled, then one SMS reaches the provider and the notice is sent; a buyer who did not opt in gets none', async () => {
    const b = await buyer();
    await optIn(b);
    const order = await cancelledOrder(b.token);
    await until(async () => {
      await h.system.broker.drain();
      return (await smsRows(b.userId, 'sent')) === 1;
    }, 'the SMS');
    const texts = await textsTo(b.phone);
    assert.equal(texts.length, 1);
    assert.match(texts[0]!.text, new RegExp(`order ${order.slice(0, 8)} was cancelled`));
    assert.equal(texts[0]!.from, 'flashsale');
    const listed = await h.http.request('GET', '/v1/notifications?limit=100', { token: b.token });
    assert.ok(listed.body.notifications.some((n: { channel: string; recipient: string }) => n.channel === 'sms' && n.recipient === b.phone));

    const quiet = await buyer();
    await cancelledOrder(quiet.token);
    await h.system.broker.drain();
    assert.equal(await scalar(h.system, `select count(*) from notifications where user_id = $1 and channel = 'sms'`, [quiet.userId]), 0);
    assert.equal(await scalar(h.system, `select count(*) from notifications where user_id = $1 and channel = 'in_app'`, [quiet.userId]), 2);
  });

  it('when the provider fails, then the notice stays pending and is sent once it recovers, exactly once', async () => {
    const b = await buyer();
    await optIn(b);
    await knobs({ failureRate: 1 });
    try {
      await cancelledOrder(b.token);
      await until(async () => {
        await h.system.broker.drain();
        return (await smsRows(b.userId, 'pending')) === 1;
      }, 'the pending SMS');
      await sleep(200);
      assert.equal((await textsTo(b.phone)).length, 0);
    } finally {
      await knobs({ failureRate: 0 });
    }
    await until(async () => {
      await h.system.broker.drain();
      return (await smsRows(b.userId, 'sent')) === 1;
    }, 'the SMS after recovery', 15_000);
    assert.equal((await textsTo(b.phone)).length, 1);
  });

  it('when the provider takes a message but answers too late, then the resend carries the same key and the buyer gets one text', async () => {
    const b = await buyer();
    await optIn(b);
    await knobs({ timeoutRate: 1, timeoutDelayMs: 1500 });
    try {
      await cancelledOrder(b.token);
      await until(async () => (await textsTo(b.phone)).length === 1, 'the message taken by the provider');
      await until(async () => {
        await h.system.broker.drain();
        return (await scalar(h.system, `select count(*) from deliveries where consumer = 'notifications' and attempts > 1 and payload->>'userId' = $1`, [b.userId])) > 0;
      }, 'a resend after the timeout');
    } finally {
      await knobs({ timeoutRate: 0 });
    }
    await until(async () => {
      await h.system.broker.drain();
      return (await smsRows(b.userId, 'sent')) === 1;
    }, 'the SMS marked sent', 15_000);
    const texts = await textsTo(b.phone);
    assert.equal(texts.length, 1, 'one text on the buyer\'s phone');
    assert.equal(texts[0]!.idempotencyKey, (await h.system.db.query<{ id: string }>(`select id from notifications where user_id = $1 and channel = 'sms'`, [b.userId]))[0]!.id);
  });

  it('when the simulator is called without its key, then 401; a bad knob is refused', async () => {
    assert.equal((await fetch(`${simUrl}/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })).status, 401);
    const bad = await fetch(`${simUrl}/_sim/knobs`, { method: 'POST', headers: { authorization: `Bearer ${SMS_KEY}`, 'content-type': 'application/json' }, body: JSON.stringify({ failureRate: 2 }) });
    assert.equal(bad.status, 422);
  });
});
