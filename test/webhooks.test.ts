import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { signatureHeader } from '../src/psp/index.ts';
import { scalar, startHarness, type Harness } from './support/harness.ts';

/** The webhook endpoint is public: only a valid, fresh signature over the exact bytes gets in, and each event acts once. */
describe('payment webhooks', () => {
  let h: Harness;
  let orderId: string;
  let intentId: string;
  let token: string;
  before(async () => {
    h = await startHarness();
    const { sale } = await h.createSale();
    const buyer = h.buyerToken();
    token = buyer.token;
    const order = await h.http.request('POST', '/v1/orders', { token, body: { items: [{ saleItemId: sale.items[0]!.id, quantity: 1 }] } });
    orderId = order.body.id;
    intentId = (await h.http.request('POST', `/v1/orders/${orderId}/payment`, { token })).body.providerPaymentId;
  });
  after(() => h.close());

  function succeededEvent(id: string) {
    return JSON.stringify({
      id, object: 'event', type: 'payment_intent.succeeded', created: Math.floor(Date.now() / 1000),
      data: { object: { id: intentId, object: 'payment_intent', amount: 5000, currency: 'usd', status: 'succeeded', metadata: { order_id: orderId }, last_payment_error: null } },
    });
  }

  const post = (body: string, signature?: string) =>
    h.http.request('POST', '/v1/payments/webhook', { rawBody: body, headers: { 'content-type': 'application/json', ...(signature ? { 'stripe-signature': signature } : {}) } });
  const secret = () => h.system.config.PSP_WEBHOOK_SECRET;
  const captures = () => scalar(h.system, `select count(*) from payments where order_id = $1 and status = 'succeeded'`, [orderId]);

  it('when the signature is forged, missing, from the wrong secret, or over other bytes, then 400 invalid_signature and nothing changes', async () => {
    const body = succeededEvent('evt_forged_1');
    const now = Math.floor(Date.now() / 1000);
    const attempts = [
      post(body),
      post(body, `t=${now},v1=${'0'.repeat(64)}`),
      post(body, signatureHeader(body, now, ['whsec_someone_elses_secret'])),
      post(body.replace('5000', '1'), signatureHeader(body, now, [secret()])),
      post(body, 'garbage'),
    ];
    for (const res of await Promise.all(attempts)) {
      assert.equal(res.status, 400, JSON.stringify(res.body));
      assert.equal(res.body.error.code, 'invalid_signature');
    }
    assert.equal(await captures(), 0);
    assert.equal(await scalar(h.system, 'select count(*) from webhook_events'), 0);
  });

  it('when the timestamp is older than the tolerance window (a replay of a captured call), then 400 and nothing changes', async () => {
    const body = succeededEvent('evt_stale_1');
    const stale = Math.floor(Date.now() / 1000) - h.system.config.PSP_WEBHOOK_TOLERANCE_S - 10;
    const res = await post(body, signatureHeader(body, stale, [secret()]));
    assert.equal(res.status, 400);
    assert.equal(res.body.error.code, 'invalid_signature');
    assert.equal(await captures(), 0);
  });

  it('when the same valid event arrives three times, then it acts once and the order is PAID once', async () => {
    const body = succeededEvent('evt_valid_1');
    const sig = signatureHeader(body, Math.floor(Date.now() / 1000), [secret()]);
    const results = await Promise.all([post(body, sig), post(body, sig), post(body, sig)]);
    assert.deepEqual(results.map((r) => r.status), [200, 200, 200]);
    assert.equal(results.filter((r) => r.body.duplicate === false).length, 1);
    await h.system.broker.drain();
    assert.equal(await captures(), 1);
    assert.equal((await h.http.request('GET', `/v1/orders/${orderId}`, { token })).body.status, 'PAID');
    assert.equal(await scalar(h.system, `select count(*) from outbox where topic = 'order.paid' and payload->>'orderId' = $1`, [orderId]), 1);
  });

  it('when a different event reports the same capture, then it changes nothing more', async () => {
    const body = succeededEvent('evt_valid_2');
    const res = await post(body, signatureHeader(body, Math.floor(Date.now() / 1000), [secret()]));
    assert.equal(res.status, 200);
    await h.system.broker.drain();
    assert.equal(await captures(), 1);
    assert.equal(await scalar(h.system, `select count(*) from outbox where topic = 'payment.succeeded' and payload->>'orderId' = $1`, [orderId]), 1);
  });

  it('when a capture names an existing order whose payment row was never written (a crash after the intent was created), then it is recorded and the order is PAID', async () => {
    const { sale } = await h.createSale();
    const placed = await h.http.request('POST', '/v1/orders', { token, body: { items: [{ saleItemId: sale.items[0]!.id, quantity: 1 }] } });
    const lostOrder = placed.body.id as string;
    const lostIntent = 'pi_created_but_never_recorded';
    const body = JSON.stringify({
      id: 'evt_lost_row_1', object: 'event', type: 'payment_intent.succeeded', created: Math.floor(Date.now() / 1000),
      data: { object: { id: lostIntent, object: 'payment_intent', amount: 5000, currency: 'usd', status: 'succeeded', metadata: { order_id: lostOrder }, last_payment_error: null } },
    });
    const res = await post(body, signatureHeader(body, Math.floor(Date.now() / 1000), [secret()]));
    assert.deepEqual([res.status, res.body], [200, { received: true, duplicate: false }]);
    await h.system.broker.drain();
    // The intent itself is the record: a succeeded payment with no buyer, and the order it names is paid.
    assert.equal(await scalar(h.system, `select count(*) from payments where provider_intent_id = $1 and order_id = $2 and status = 'succeeded' and user_id is null`, [lostIntent, lostOrder]), 1);
    assert.equal((await h.http.request('GET', `/v1/orders/${lostOrder}`, { token })).body.status, 'PAID');
  });

  it('when such a capture carries an amount that is not a positive integer, then 422 and nothing is recorded, not a 500', async () => {
    const { sale } = await h.createSale();
    const placed = await h.http.request('POST', '/v1/orders', { token, body: { items: [{ saleItemId: sale.items[0]!.id, quantity: 1 }] } });
    for (const [i, amount] of [1.5, 0, -1, 2 ** 63].entries()) {
      const body = JSON.stringify({
        id: `evt_bad_amount_${i}`, object: 'event', type: 'payment_intent.succeeded', created: Math.floor(Date.now() / 1000),
        data: { object: { id: `pi_bad_amount_${i}`, object: 'payment_intent', amount, currency: 'usd', status: 'succeeded', metadata: { order_id: placed.body.id }, last_payment_error: null } },
      });
      const res = await post(body, signatureHeader(body, Math.floor(Date.now() / 1000), [secret()]));
      assert.deepEqual([res.status, res.body.error?.code], [422, 'validation_failed'], `${amount}: ${JSON.stringify(res.body)}`);
    }
    assert.equal(await scalar(h.system, 'select count(*) from payments where order_id = $1', [placed.body.id]), 0);
    assert.equal(await scalar(h.system, `select count(*) from webhook_events where event_id like 'evt_bad_amount_%'`), 0);
  });

  it('when a signed event carries text the database cannot store (a NUL, a lone surrogate), then 422 validation_failed, never a 500, and nothing is recorded', async () => {
    const now = Math.floor(Date.now() / 1000);
    const event = (id: string, type: string, object: Record<string, unknown>) => JSON.stringify({ id, object: 'event', type, created: now, data: { object } });
    const intent = (fields: Record<string, unknown>) => ({ id: intentId, object: 'payment_intent', amount: 5000, currency: 'usd', status: 'succeeded', metadata: { order_id: orderId }, last_payment_error: null, ...fields });
    const bodies: Array<[string, string]> = [
      ['NUL in the event id', event('evt_nul_\u0000', 'payment_intent.succeeded', intent({}))],
      ['lone surrogate in the event id', event('evt_lone_\ud800', 'payment_intent.succeeded', intent({}))],
      ['NUL in the type', event('evt_text_type', 'payment_intent.succeeded\u0000', intent({}))],
      ['NUL in the intent id', event('evt_text_intent', 'payment_intent.succeeded', intent({ id: 'pi_\u0000' }))],
      ['lone surrogate in the currency', event('evt_text_currency', 'payment_intent.succeeded', intent({ currency: 'us\udfff' }))],
      ['lone surrogate in the order id', event('evt_text_order', 'payment_intent.succeeded', intent({ metadata: { order_id: '\ud800' } }))],
      ['NUL in the decline message', event('evt_text_decline', 'payment_intent.payment_failed', intent({ status: 'requires_payment_method', last_payment_error: { message: 'declined\u0000' } }))],
    ];
    for (const [what, body] of bodies) {
      const res = await post(body, signatureHeader(body, now, [secret()]));
      assert.deepEqual([res.status, res.body.error?.code], [422, 'validation_failed'], `${what}: ${JSON.stringify(res.body)}`);
    }
    assert.equal(await scalar(h.system, `select count(*) from webhook_events where event_id like 'evt_text_%' or event_id like 'evt_nul_%' or event_id like 'evt_lone_%'`), 0);
  });

  it('when the body is not JSON but correctly signed, then a 4xx, never a 5xx', async () => {
    const body = 'not json at all';
    const res = await post(body, signatureHeader(body, Math.floor(Date.now() / 1000), [secret()]));
    assert.ok(res.status >= 400 && res.status < 500, String(res.status));
  });
});
