import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { GatewayError } from '../platform/payment-provider/port.ts';
import { HttpPaymentGateway } from '../platform/payment-provider/http-client.ts';
import type { EventObject, IntentObject, RefundObject } from './index.ts';
import { startPsp, startWebhookReceiver, TEST_API_KEY, TEST_WEBHOOK_SECRET, type RunningPsp, type WebhookReceiver } from './testing.ts';

type ErrorBody = { error: { type: string; code?: string; param?: string; message: string; payment_intent?: IntentObject } };
type SimEvent = { id: string; type: string; status: string; copies: number; delivered: number; attempts: number; payment_intent: string };

/** Everything a test started, closed after it (simulator first, so no delivery is left pending). */
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function setup(config: Parameters<typeof startPsp>[0] = {}): Promise<{ p: RunningPsp; hooks: WebhookReceiver }> {
  const hooks = await startWebhookReceiver();
  cleanups.push(() => hooks.close());
  const p = await startPsp({ ...config, config: { PSP_WEBHOOK_URL: hooks.url, ...config.config } });
  cleanups.push(() => p.close());
  return { p, hooks };
}

const createIntent = (p: RunningPsp, orderId = 'order-1', amount = 2500, headers: Record<string, string> = {}) =>
  p.call<IntentObject>('POST', '/v1/payment_intents', { form: { amount, currency: 'usd', 'metadata[order_id]': orderId }, headers });

const confirm = (p: RunningPsp, id: string, paymentMethod?: string) =>
  p.call<IntentObject & ErrorBody>('POST', `/v1/payment_intents/${id}/confirm`, paymentMethod ? { form: { payment_method: paymentMethod } } : {});

const gateway = (p: RunningPsp, secrets: string[] = [TEST_WEBHOOK_SECRET]) =>
  new HttpPaymentGateway({ baseUrl: p.url, apiKey: TEST_API_KEY, webhookSecrets: secrets, timeoutMs: 2000, toleranceS: 300 });

describe('psp simulator: payment intents', () => {
  it('when an intent is created with a form body in bracket notation, then a Stripe-shaped intent awaits payment at the hosted page', async () => {
    const { p } = await setup();
    const res = await createIntent(p, 'order-42', 1999);
    assert.equal(res.status, 200, res.text);
    const intent = res.body;
    assert.match(intent.id, /^pi_[0-9a-f]{24}$/);
    assert.equal(intent.object, 'payment_intent');
    assert.equal(intent.amount, 1999);
    assert.equal(intent.currency, 'usd');
    assert.equal(intent.status, 'requires_payment_method');
    assert.match(intent.client_secret, new RegExp(`^${intent.id}_secret_`));
    assert.deepEqual(intent.metadata, { order_id: 'order-42' });
    assert.equal(typeof intent.created, 'number');
    assert.equal(intent.last_payment_error, null);
    assert.deepEqual(intent.next_action, { type: 'redirect_to_url', redirect_to_url: { url: `${p.url}/pay/${intent.id}`, return_url: null } });
    assert.match(res.headers.get('request-id') ?? '', /^req_/);

    const read = await p.call<IntentObject>('GET', `/v1/payment_intents/${intent.id}`);
    assert.equal(read.status, 200);
    assert.deepEqual(read.body, intent);
  });

  it('when an intent is created with a JSON body and an upper-case currency, then it is stored with the lower-case code', async () => {
    const { p } = await setup();
    const res = await p.call<IntentObject>('POST', '/v1/payment_intents', { json: { amount: 500, currency: 'JPY', metadata: { order_id: 'o-json' } } });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.currency, 'jpy');
    assert.equal(res.body.amount, 500);
    assert.equal(res.body.metadata.order_id, 'o-json');
  });

  it('when the amount or currency is missing or invalid, then 400 invalid_request_error naming the parameter', async () => {
    const { p } = await setup();
    const cases: Array<[Record<string, string | number>, string, string]> = [
      [{ currency: 'usd' }, 'amount', 'parameter_missing'],
      [{ amount: 0, currency: 'usd' }, 'amount', 'amount_too_small'],
      [{ amount: -5, currency: 'usd' }, 'amount', 'amount_too_small'],
      [{ amount: '12.5', currency: 'usd' }, 'amount', 'parameter_invalid_integer'],
      [{ amount: 'ten', currency: 'usd' }, 'amount', 'parameter_invalid_integer'],
      [{ amount: 100 }, 'currency', 'parameter_missing'],
      [{ amount: 100, currency: 'dollars' }, 'currency', 'parameter_invalid_string'],
    ];
    for (const [form, param, code] of cases) {
      const res = await p.call<ErrorBody>('POST', '/v1/payment_intents', { form });
      assert.equal(res.status, 400, JSON.stringify(form));
      assert.equal(res.body.error.type, 'invalid_request_error');
      assert.equal(res.body.error.param, param, JSON.stringify(form));
      assert.equal(res.body.error.code, code, JSON.stringify(form));
    }
    const fractional = await p.call<ErrorBody>('POST', '/v1/payment_intents', { json: { amount: 1.5, currency: 'usd' } });
    assert.equal(fractional.status, 400);
    assert.equal(fractional.body.error.code, 'parameter_invalid_integer');
    const badJson = await fetch(`${p.url}/v1/payment_intents`, { method: 'POST', headers: { authorization: `Bearer ${TEST_API_KEY}`, 'content-type': 'application/json' }, body: '{"amount": 1' });
    assert.equal(badJson.status, 400);
    assert.equal(((await badJson.json()) as ErrorBody).error.type, 'invalid_request_error');
    const xml = await fetch(`${p.url}/v1/payment_intents`, { method: 'POST', headers: { authorization: `Bearer ${TEST_API_KEY}`, 'content-type': 'application/xml' }, body: '<a/>' });
    assert.equal(xml.status, 400);
    assert.equal(((await xml.json()) as ErrorBody).error.code, 'content_type_invalid');
  });

  it('when the same Idempotency-Key is sent twice, then the same intent comes back, and with other parameters the key is refused', async () => {
    const { p } = await setup();
    const first = await createIntent(p, 'order-idem', 700, { 'idempotency-key': 'key-1' });
    const again = await createIntent(p, 'order-idem', 700, { 'idempotency-key': 'key-1' });
    assert.equal(again.status, 200);
    assert.equal(again.body.id, first.body.id);
    assert.equal(again.headers.get('idempotent-replayed'), 'true');
    const other = await createIntent(p, 'order-idem', 701, { 'idempotency-key': 'key-1' });
    assert.equal(other.status, 400);
    assert.equal((other.body as unknown as ErrorBody).error.type, 'idempotency_error');
    const health = await p.call<{ intents: number }>('GET', '/health', { apiKey: null });
    assert.equal(health.body.intents, 1);
  });

  it('when concurrent requests share an Idempotency-Key, then exactly one intent is created', async () => {
    const { p } = await setup();
    const results = await Promise.all(Array.from({ length: 10 }, () => createIntent(p, 'order-race', 300, { 'idempotency-key': 'race' })));
    assert.equal(new Set(results.map((r) => r.body.id)).size, 1);
  });

  it('when the API key is missing or wrong, then 401 with a Stripe-like error, also on the simulator controls', async () => {
    const { p } = await setup();
    const missing = await p.call<ErrorBody>('POST', '/v1/payment_intents', { form: { amount: 100, currency: 'usd' }, apiKey: null });
    assert.equal(missing.status, 401);
    assert.equal(missing.body.error.type, 'invalid_request_error');
    assert.match(missing.body.error.message, /API key/);
    const wrong = await p.call<ErrorBody>('GET', '/v1/payment_intents/pi_x', { apiKey: 'sk_test_wrong_key_123' });
    assert.equal(wrong.status, 401);
    assert.equal(wrong.body.error.code, 'api_key_invalid');
    assert.doesNotMatch(wrong.body.error.message, /sk_test_wrong_key_123/, 'the key is not echoed back whole');
    assert.equal((await p.call('GET', '/_sim/knobs', { apiKey: null })).status, 401);
    assert.equal((await p.call('GET', '/_sim/events', { apiKey: 'nope-nope-nope' })).status, 401);
    assert.equal((await p.call('GET', '/health', { apiKey: null })).status, 200);
  });

  it('when an intent or a route does not exist, then 404 resource_missing / unrecognized URL', async () => {
    const { p } = await setup();
    const res = await p.call<ErrorBody>('GET', '/v1/payment_intents/pi_nope');
    assert.equal(res.status, 404);
    assert.equal(res.body.error.code, 'resource_missing');
    const route = await p.call<ErrorBody>('GET', '/v1/charges');
    assert.equal(route.status, 404);
    assert.match(route.body.error.message, /Unrecognized request URL/);
  });
});

describe('psp simulator: confirm, cancel, refund and their webhooks', () => {
  it('when confirmed with pm_card_visa, then it succeeds and a signed payment_intent.succeeded webhook arrives that verifyWebhook accepts', async () => {
    const { p, hooks } = await setup();
    const intent = (await createIntent(p, 'order-paid', 4200)).body;
    const res = await confirm(p, intent.id, 'pm_card_visa');
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.status, 'succeeded');
    assert.equal(res.body.amount_received, 4200);
    assert.equal(res.body.next_action, null);

    const [hook] = await hooks.waitFor(1);
    assert.ok(hook);
    assert.equal(hook.event.type, 'payment_intent.succeeded');
    assert.match(hook.event.id, /^evt_/);
    assert.equal(hook.event.object, 'event');
    assert.match(hook.signature ?? '', /^t=\d+,v1=[0-9a-f]{64}$/);
    const event = gateway(p).verifyWebhook(hook.rawBody, hook.signature, Date.now());
    assert.equal(event.id, hook.event.id);
    assert.equal(event.type, 'payment_intent.succeeded');
    assert.equal(event.intent?.id, intent.id);
    assert.equal(event.intent?.status, 'succeeded');
    assert.equal(event.intent?.orderId, 'order-paid');
    assert.equal(event.intent?.amount, 4200);
    assert.throws(() => gateway(p, ['whsec_some_other_secret_123456']).verifyWebhook(hook.rawBody, hook.signature, Date.now()));
  });

  it('when confirmed with pm_card_chargeDeclined, then 402 card_error, the intent is payable again with last_payment_error, and payment_failed is sent', async () => {
    const { p, hooks } = await setup();
    const intent = (await createIntent(p)).body;
    const res = await confirm(p, intent.id, 'pm_card_chargeDeclined');
    assert.equal(res.status, 402, res.text);
    assert.equal(res.body.error.type, 'card_error');
    assert.equal(res.body.error.code, 'card_declined');
    assert.equal(res.body.error.payment_intent?.status, 'requires_payment_method');
    const read = await p.call<IntentObject>('GET', `/v1/payment_intents/${intent.id}`);
    assert.equal(read.body.status, 'requires_payment_method');
    assert.equal(read.body.last_payment_error?.message, 'Your card was declined.');
    const [hook] = await hooks.waitFor(1);
    assert.equal(hook?.event.type, 'payment_intent.payment_failed');
    const event = gateway(p).verifyWebhook(hook!.rawBody, hook!.signature, Date.now());
    assert.equal(event.intent?.lastError, 'Your card was declined.');

    // the buyer tries another card: the same intent succeeds
    const retry = await confirm(p, intent.id, 'pm_card_visa');
    assert.equal(retry.body.status, 'succeeded');
    assert.equal(retry.body.last_payment_error, null);
  });

  it('when an unpaid intent is cancelled, then it is canceled and payment_intent.canceled is sent; a paid one cannot be cancelled', async () => {
    const { p, hooks } = await setup();
    const open = (await createIntent(p, 'order-c1')).body;
    const cancelled = await p.call<IntentObject>('POST', `/v1/payment_intents/${open.id}/cancel`, { form: { cancellation_reason: 'abandoned' } });
    assert.equal(cancelled.status, 200, cancelled.text);
    assert.equal(cancelled.body.status, 'canceled');
    assert.equal(cancelled.body.cancellation_reason, 'abandoned');
    assert.equal((await hooks.waitFor(1))[0]?.event.type, 'payment_intent.canceled');

    const confirmCanceled = await confirm(p, open.id, 'pm_card_visa');
    assert.equal(confirmCanceled.status, 400);
    assert.equal(confirmCanceled.body.error.code, 'payment_intent_unexpected_state');

    const paid = (await createIntent(p, 'order-c2')).body;
    await confirm(p, paid.id, 'pm_card_visa');
    const refused = await p.call<ErrorBody>('POST', `/v1/payment_intents/${paid.id}/cancel`);
    assert.equal(refused.status, 400);
    assert.deepEqual(Object.keys(refused.body.error).sort(), ['code', 'message', 'type']);
    assert.equal(refused.body.error.type, 'invalid_request_error');
    assert.equal(refused.body.error.code, 'payment_intent_unexpected_state');
    assert.equal((await p.call<IntentObject>('GET', `/v1/payment_intents/${paid.id}`)).body.status, 'succeeded');
  });

  it('when a paid intent is refunded in parts, then each refund succeeds up to the amount, charge.refunded is sent, and more is refused', async () => {
    const { p, hooks } = await setup();
    const intent = (await createIntent(p, 'order-r', 1000)).body;
    await confirm(p, intent.id, 'pm_card_visa');
    const part = await p.call<RefundObject>('POST', '/v1/refunds', { form: { payment_intent: intent.id, amount: 300 }, headers: { 'idempotency-key': 'refund-1' } });
    assert.equal(part.status, 200, part.text);
    assert.match(part.body.id, /^re_/);
    assert.equal(part.body.object, 'refund');
    assert.equal(part.body.amount, 300);
    assert.equal(part.body.payment_intent, intent.id);
    assert.equal(part.body.status, 'succeeded');
    const replay = await p.call<RefundObject>('POST', '/v1/refunds', { form: { payment_intent: intent.id, amount: 300 }, headers: { 'idempotency-key': 'refund-1' } });
    assert.equal(replay.body.id, part.body.id, 'same key, same refund');

    const tooMuch = await p.call<ErrorBody>('POST', '/v1/refunds', { form: { payment_intent: intent.id, amount: 701 } });
    assert.equal(tooMuch.status, 400);
    assert.equal(tooMuch.body.error.code, 'amount_too_large');
    const rest = await p.call<RefundObject>('POST', '/v1/refunds', { json: { payment_intent: intent.id } });
    assert.equal(rest.status, 200, rest.text);
    assert.equal(rest.body.amount, 700, 'no amount: the rest');
    const again = await p.call<ErrorBody>('POST', '/v1/refunds', { form: { payment_intent: intent.id, amount: 1 } });
    assert.equal(again.status, 400);
    assert.equal(again.body.error.code, 'charge_already_refunded');

    const refundHooks = await hooks.waitFor(2, (w) => w.event.type === 'charge.refunded');
    const event = gateway(p).verifyWebhook(refundHooks[0]!.rawBody, refundHooks[0]!.signature, Date.now());
    assert.equal(event.type, 'charge.refunded');
    assert.equal(event.intent, undefined);
    assert.equal(event.intentId, intent.id);
    assert.deepEqual(event.refund, { id: part.body.id, paymentIntentId: intent.id, amount: 300, status: 'succeeded' });
  });

  it('when an unpaid or unknown intent is refunded, then 400 / 404 and nothing is refunded', async () => {
    const { p } = await setup();
    const intent = (await createIntent(p)).body;
    const unpaid = await p.call<ErrorBody>('POST', '/v1/refunds', { form: { payment_intent: intent.id } });
    assert.equal(unpaid.status, 400);
    assert.equal(unpaid.body.error.code, 'payment_intent_unexpected_state');
    const unknown = await p.call<ErrorBody>('POST', '/v1/refunds', { form: { payment_intent: 'pi_unknown' } });
    assert.equal(unknown.status, 404);
    const none = await p.call<ErrorBody>('POST', '/v1/refunds', { form: {} });
    assert.equal(none.status, 400);
    assert.equal(none.body.error.param, 'payment_intent');
  });

  it('when an intent is created with confirm=true and a payment method, then it is paid in one call', async () => {
    const { p } = await setup();
    const res = await p.call<IntentObject>('POST', '/v1/payment_intents', { form: { amount: 100, currency: 'eur', confirm: 'true', payment_method: 'pm_card_visa' } });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.status, 'succeeded');
  });
});

describe('psp simulator: hosted payment page', () => {
  it('when the buyer opens the page, then it shows the amount and Pay / Decline forms; Pay succeeds and the page shows it', async () => {
    const { p, hooks } = await setup();
    const intent = (await createIntent(p, 'order-<b>page</b>', 1234)).body;
    const page = await fetch(intent.next_action!.redirect_to_url.url);
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type') ?? '', /text\/html/);
    const html = await page.text();
    assert.match(html, /\$12\.34/);
    assert.match(html, new RegExp(`action="/pay/${intent.id}/pay"`));
    assert.match(html, new RegExp(`action="/pay/${intent.id}/decline"`));
    assert.match(html, /order-&lt;b&gt;page&lt;\/b&gt;/, 'metadata is escaped');

    const pay = await fetch(`${p.url}/pay/${intent.id}/pay`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: '', redirect: 'manual' });
    assert.equal(pay.status, 303);
    assert.equal(pay.headers.get('location'), `/pay/${intent.id}?result=succeeded`);
    const after = await (await fetch(`${p.url}${pay.headers.get('location')}`)).text();
    assert.match(after, /Payment succeeded/);
    assert.doesNotMatch(after, /action="\/pay\//, 'no buttons once paid');
    assert.equal((await hooks.waitFor(1))[0]?.event.type, 'payment_intent.succeeded');
    assert.equal((await p.call<IntentObject>('GET', `/v1/payment_intents/${intent.id}`)).body.status, 'succeeded');
  });

  it('when the buyer presses Decline, then the payment is declined and the page says so; unknown intents are 404', async () => {
    const { p, hooks } = await setup();
    const intent = (await createIntent(p)).body;
    const decline = await fetch(`${p.url}/pay/${intent.id}/decline`, { method: 'POST', redirect: 'manual' });
    assert.equal(decline.status, 303);
    assert.match(await (await fetch(`${p.url}${decline.headers.get('location')}`)).text(), /Payment declined: Your card was declined/);
    assert.equal((await hooks.waitFor(1))[0]?.event.type, 'payment_intent.payment_failed');
    assert.equal((await fetch(`${p.url}/pay/pi_missing`)).status, 404);
    assert.equal((await fetch(`${p.url}/pay/pi_missing/pay`, { method: 'POST', redirect: 'manual' })).status, 404);
  });
});

describe('psp simulator: hosted page against framing and cross-site posts', () => {
  const FRAME_POLICY = /(^|;)\s*frame-ancestors 'none'\s*(;|$)/;
  const postPage = (p: RunningPsp, path: string, headers: Record<string, string> = {}) =>
    fetch(`${p.url}${path}`, { method: 'POST', headers, redirect: 'manual' });

  /** A POST exactly as the README's `curl -s -X POST localhost:3001/pay/$PI/pay` sends it: no Origin, no Sec-Fetch-*, no body. */
  const curlPost = (p: RunningPsp, path: string) => new Promise<number>((resolve, reject) => {
    const request = httpRequest(`${p.url}${path}`, { method: 'POST', headers: { 'user-agent': 'curl/8.5.0', accept: '*/*' } }, (response) => {
      response.resume();
      response.on('end', () => resolve(response.statusCode ?? 0));
    });
    request.on('error', reject);
    request.end();
  });

  const statusOf = async (p: RunningPsp, id: string) => (await p.call<IntentObject>('GET', `/v1/payment_intents/${id}`)).body.status;

  it('when any hosted-page answer is sent (the page, 404 page, 303, 403, 400), then it forbids framing with CSP frame-ancestors and X-Frame-Options', async () => {
    const { p } = await setup();
    const intent = (await createIntent(p)).body;
    const answers: Array<[string, Response]> = [
      ['page', await fetch(`${p.url}/pay/${intent.id}`)],
      ['404 page', await fetch(`${p.url}/pay/pi_missing`)],
      ['404 on POST', await postPage(p, '/pay/pi_missing/pay')],
      ['403', await postPage(p, `/pay/${intent.id}/decline`, { origin: 'https://evil.example' })],
      ['400', await fetch(`${p.url}/pay/${intent.id}/pay`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'a[b][c][d][e][f][g]=1', redirect: 'manual' })],
      ['303', await postPage(p, `/pay/${intent.id}/pay`)],
    ];
    assert.deepEqual(answers.map(([what, res]) => `${what}: ${res.status}`), ['page: 200', '404 page: 404', '404 on POST: 404', '403: 403', '400: 400', '303: 303']);
    for (const [what, res] of answers) {
      assert.match(res.headers.get('content-security-policy') ?? '', FRAME_POLICY, what);
      assert.equal(res.headers.get('x-frame-options'), 'DENY', what);
      assert.equal(res.headers.get('cache-control'), 'no-store', what);
    }
  });

  it('when a Pay or Decline POST comes from another origin, a null origin, or says Sec-Fetch-Site: cross-site, then 403 with an HTML page and nothing changes', async () => {
    const { p } = await setup();
    const intent = (await createIntent(p)).body;
    const port = new URL(p.url).port;
    const foreign: Array<Record<string, string>> = [
      { origin: 'https://evil.example' },
      { origin: 'null' },
      { origin: 'http://127.0.0.1:1' },
      { origin: `https://127.0.0.1:${port}` },
      { origin: 'not a url' },
      { 'sec-fetch-site': 'cross-site' },
      { 'sec-fetch-site': 'same-site' },
      { origin: p.url, 'sec-fetch-site': 'cross-site' },
    ];
    for (const action of ['pay', 'decline']) {
      for (const headers of foreign) {
        const res = await postPage(p, `/pay/${intent.id}/${action}`, headers);
        assert.equal(res.status, 403, `${action} ${JSON.stringify(headers)}`);
        assert.match(res.headers.get('content-type') ?? '', /^text\/html/);
        assert.match(await res.text(), /only accepts its own Pay and Decline buttons/);
      }
    }
    assert.equal(await statusOf(p, intent.id), 'requires_payment_method');
    assert.deepEqual((await p.call<{ data: SimEvent[] }>('GET', '/_sim/events')).body.data, [], 'no payment event was made');
  });

  it('when a POST comes from the origin it was reached at (a browser on the page), or has no Origin (curl, as the README tour does), then it is accepted', async () => {
    const { p } = await setup();
    const declined = (await createIntent(p, 'order-browser')).body;
    const fromPage = await postPage(p, `/pay/${declined.id}/decline`, { origin: p.url, 'sec-fetch-site': 'same-origin' });
    assert.equal(fromPage.status, 303);
    assert.equal(await statusOf(p, declined.id), 'requires_payment_method');
    assert.equal(fromPage.headers.get('location'), `/pay/${declined.id}?result=declined`);
    const paid = (await createIntent(p, 'order-curl')).body;
    assert.equal(await curlPost(p, `/pay/${paid.id}/pay`), 303);
    assert.equal(await statusOf(p, paid.id), 'succeeded');
  });

  it('when the page is served under PSP_PUBLIC_URL (e.g. behind a proxy), then a POST from that origin is accepted', async () => {
    const p = await startPsp({ config: { PSP_PUBLIC_URL: 'https://PSP.example.test/base/' }, publicUrl: undefined });
    cleanups.push(() => p.close());
    const intent = (await createIntent(p)).body;
    assert.equal(intent.next_action?.redirect_to_url.url, `https://PSP.example.test/base/pay/${intent.id}`);
    const res = await postPage(p, `/pay/${intent.id}/pay`, { origin: 'https://psp.example.test' });
    assert.equal(res.status, 303);
    assert.equal(await statusOf(p, intent.id), 'succeeded');
    assert.equal((await postPage(p, `/pay/${intent.id}/pay`, { origin: 'http://psp.example.test' })).status, 403, 'the scheme is part of the origin');
  });
});

describe('psp simulator: list endpoints', () => {
  type List<T> = { object: string; url: string; has_more: boolean; data: T[] };

  /** Every item, following `starting_after` from page to page. */
  async function pageThrough<T extends { id: string }>(p: RunningPsp, path: string, limit: number): Promise<{ ids: string[]; pages: number }> {
    const ids: string[] = [];
    let pages = 0;
    for (let after: string | undefined, more = true; more; pages++) {
      const query = new URLSearchParams({ limit: String(limit), ...(after ? { starting_after: after } : {}) });
      const page = await p.call<List<T>>('GET', `${path}${path.includes('?') ? '&' : '?'}${query}`);
      assert.equal(page.status, 200, page.text);
      assert.ok(page.body.data.length <= limit);
      ids.push(...page.body.data.map((item) => item.id));
      after = page.body.data.at(-1)?.id;
      more = page.body.has_more;
    }
    return { ids, pages };
  }

  it('when payment intents are listed, then a Stripe list, newest first, 10 by default, paged by limit and starting_after', async () => {
    const { p } = await setup();
    const created: IntentObject[] = [];
    for (let i = 0; i < 12; i++) created.push((await createIntent(p, `order-list-${i}`, 100 + i)).body);
    const newestFirst = created.map((intent) => intent.id).reverse();
    // a change of state does not move an intent in the list; it shows its current state
    await confirm(p, created[0]!.id, 'pm_card_visa');

    const first = await p.call<List<IntentObject>>('GET', '/v1/payment_intents');
    assert.equal(first.status, 200, first.text);
    assert.deepEqual({ ...first.body, data: undefined }, { object: 'list', url: '/v1/payment_intents', has_more: true, data: undefined });
    assert.deepEqual(first.body.data.map((intent) => intent.id), newestFirst.slice(0, 10));
    assert.equal(first.body.data[0]!.object, 'payment_intent');

    assert.deepEqual(await pageThrough(p, '/v1/payment_intents', 5), { ids: newestFirst, pages: 3 });
    const all = await p.call<List<IntentObject>>('GET', '/v1/payment_intents?limit=100');
    assert.equal(all.body.has_more, false);
    assert.equal(all.body.data.at(-1)?.status, 'succeeded');
    const one = await p.call<List<IntentObject>>('GET', `/v1/payment_intents?limit=1&starting_after=${newestFirst[10]}`);
    assert.deepEqual([one.body.data.map((intent) => intent.id), one.body.has_more], [[newestFirst[11]], false]);
  });

  it('when refunds are listed, then newest first, filtered by payment_intent, paged by starting_after', async () => {
    const { p } = await setup();
    const paid = async (orderId: string) => {
      const intent = (await createIntent(p, orderId, 1000)).body;
      await confirm(p, intent.id, 'pm_card_visa');
      return intent.id;
    };
    const a = await paid('order-ra');
    const b = await paid('order-rb');
    const refunds: RefundObject[] = [];
    for (const [intentId, amount] of [[a, 100], [b, 200], [a, 300], [b, 400], [a, 500]] as const) {
      refunds.push((await p.call<RefundObject>('POST', '/v1/refunds', { form: { payment_intent: intentId, amount } })).body);
    }
    const newestFirst = (intentId?: string) => refunds.filter((r) => !intentId || r.payment_intent === intentId).map((r) => r.id).reverse();

    const all = await p.call<List<RefundObject>>('GET', '/v1/refunds');
    assert.equal(all.status, 200, all.text);
    assert.deepEqual({ ...all.body, data: undefined }, { object: 'list', url: '/v1/refunds', has_more: false, data: undefined });
    assert.deepEqual(all.body.data.map((r) => r.id), newestFirst());
    const ofA = await p.call<List<RefundObject>>('GET', `/v1/refunds?payment_intent=${a}`);
    assert.deepEqual(ofA.body.data.map((r) => r.amount), [500, 300, 100]);
    assert.deepEqual(await pageThrough(p, `/v1/refunds?payment_intent=${b}`, 1), { ids: newestFirst(b), pages: 2 });
    assert.deepEqual((await p.call<List<RefundObject>>('GET', '/v1/refunds?payment_intent=pi_none')).body.data, []);
  });

  it('when events are listed, then newest first, filtered by type, paged by starting_after', async () => {
    const { p } = await setup();
    const intent = (await createIntent(p)).body;
    await confirm(p, intent.id, 'pm_card_chargeDeclined');
    await confirm(p, intent.id, 'pm_card_visa');
    await p.call('POST', '/v1/refunds', { form: { payment_intent: intent.id, amount: 1 } });
    const all = await p.call<List<EventObject>>('GET', '/v1/events');
    assert.equal(all.body.url, '/v1/events');
    assert.deepEqual(all.body.data.map((e) => e.type), ['charge.refunded', 'payment_intent.succeeded', 'payment_intent.payment_failed']);
    const succeeded = await p.call<List<EventObject>>('GET', '/v1/events?type=payment_intent.succeeded');
    assert.deepEqual(succeeded.body.data.map((e) => e.type), ['payment_intent.succeeded']);
    assert.deepEqual((await pageThrough(p, '/v1/events', 2)).ids, all.body.data.map((e) => e.id));
  });

  it('when a list is asked for without the API key, then 401', async () => {
    const { p } = await setup();
    for (const path of ['/v1/payment_intents', '/v1/refunds', '/v1/events']) {
      assert.equal((await p.call('GET', path, { apiKey: null })).status, 401, path);
      assert.equal((await p.call('GET', path, { apiKey: 'sk_test_not_the_key' })).status, 401, path);
    }
  });
});

describe('psp simulator: knobs', () => {
  it('when the knobs are read and changed, then the config defaults show and bad values are refused', async () => {
    const { p } = await setup({ config: { PSP_DECLINE_RATE: 0.25, PSP_WEBHOOK_DELAY_MS: 7 } });
    const knobs = await p.call<Record<string, unknown>>('GET', '/_sim/knobs');
    assert.equal(knobs.body.declineRate, 0.25);
    assert.equal(knobs.body.webhookDelayMs, 7);
    assert.equal(knobs.body.webhookReorder, false);
    const changed = await p.setKnobs({ declineRate: 0.5 });
    assert.equal(changed.declineRate, 0.5);
    assert.equal(changed.webhookDelayMs, 7, 'a partial update keeps the rest');
    for (const bad of [{ declineRate: 2 }, { latencyMs: -1 }, { nonsense: 1 }, { webhookReorder: 'yes' }]) {
      const res = await p.call<ErrorBody>('POST', '/_sim/knobs', { json: bad });
      assert.equal(res.status, 400, JSON.stringify(bad));
    }
  });

  it('when the decline rate is 1, then a confirm without a payment method and the hosted Pay button are declined', async () => {
    const { p } = await setup({ config: { PSP_DECLINE_RATE: 1 } });
    const a = (await createIntent(p, 'a')).body;
    assert.equal((await confirm(p, a.id)).status, 402);
    await fetch(`${p.url}/pay/${a.id}/pay`, { method: 'POST', redirect: 'manual' });
    assert.equal((await p.call<IntentObject>('GET', `/v1/payment_intents/${a.id}`)).body.status, 'requires_payment_method');
    assert.equal((await confirm(p, a.id, 'pm_card_visa')).status, 200, 'an explicit test card still decides');
  });

  it('when the decline rate is 0, then a confirm without a payment method succeeds', async () => {
    const { p } = await setup();
    const a = (await createIntent(p)).body;
    assert.equal((await confirm(p, a.id)).body.status, 'succeeded');
  });

  it('when the duplicate rate is 1, then each event is delivered twice with the same event id, each validly signed', async () => {
    const { p, hooks } = await setup({ config: { PSP_WEBHOOK_DUPLICATE_RATE: 1 } });
    const intent = (await createIntent(p)).body;
    await confirm(p, intent.id, 'pm_card_visa');
    const both = await hooks.waitFor(2);
    assert.equal(both[0]!.event.id, both[1]!.event.id);
    for (const hook of both) assert.equal(gateway(p).verifyWebhook(hook.rawBody, hook.signature, Date.now()).id, both[0]!.event.id);
    const listed = await p.call<{ data: SimEvent[] }>('GET', `/_sim/events?payment_intent=${intent.id}`);
    assert.equal(listed.body.data.length, 1);
    assert.equal(listed.body.data[0]!.copies, 2);
  });

  it('when the drop rate is 1, then no event is delivered (the next one, with drops off, arrives alone)', async () => {
    const { p, hooks } = await setup({ config: { PSP_WEBHOOK_DROP_RATE: 1 } });
    const dropped = (await createIntent(p, 'dropped')).body;
    await confirm(p, dropped.id, 'pm_card_visa');
    await p.call('POST', `/v1/refunds`, { form: { payment_intent: dropped.id } });
    await p.setKnobs({ webhookDropRate: 0 });
    const kept = (await createIntent(p, 'kept')).body;
    await confirm(p, kept.id, 'pm_card_visa');
    await hooks.waitFor(1);
    // deliveries leave in creation order without delay, so anything not dropped would have come first
    assert.deepEqual(hooks.received.map((w) => (w.event.data.object as IntentObject).id), [kept.id]);
    const listed = await p.call<{ data: SimEvent[] }>('GET', '/_sim/events');
    assert.deepEqual(listed.body.data.map((e) => e.status).slice(0, 2), ['dropped', 'dropped']);
  });

  it('when a delivery fails, then it is retried with backoff until the endpoint answers 2xx', async () => {
    const { p, hooks } = await setup();
    hooks.answerNext(500, 503);
    const intent = (await createIntent(p)).body;
    await confirm(p, intent.id, 'pm_card_visa');
    const all = await hooks.waitFor(1, (w) => w.answered === 200);
    assert.equal(hooks.received.length, 3);
    assert.deepEqual(hooks.received.map((w) => w.answered), [500, 503, 200]);
    assert.ok(hooks.received.every((w) => w.event.id === all[0]!.event.id));
    // the outcome is recorded once the simulator has read the 200
    const recorded = async (): Promise<SimEvent> => {
      for (;;) {
        const [e] = (await p.call<{ data: SimEvent[] }>('GET', '/_sim/events')).body.data;
        if (e?.status !== 'pending') return e!;
        await new Promise((resolve) => setImmediate(resolve));
      }
    };
    const event = await recorded();
    assert.equal(event.status, 'delivered');
    assert.equal(event.attempts, 3);
  });

  it('when the webhook endpoint is down, then the delivery is given up after the attempts and marked failed', async () => {
    const hooks = await startWebhookReceiver();
    const deadUrl = hooks.url;
    await hooks.close();
    const p = await startPsp({ config: { PSP_WEBHOOK_URL: deadUrl }, webhookRetry: { attempts: 2, baseMs: 5, maxMs: 5 } });
    cleanups.push(() => p.close());
    const intent = (await createIntent(p)).body;
    await confirm(p, intent.id, 'pm_card_visa');
    for (;;) {
      const [e] = (await p.call<{ data: SimEvent[] }>('GET', '/_sim/events')).body.data;
      if (e?.status === 'failed') {
        assert.equal(e.attempts, 2);
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  });

  it('when reorder is on, then events held together are delivered newest first', async () => {
    const { p, hooks } = await setup({ config: { PSP_WEBHOOK_REORDER: true } });
    await p.setKnobs({ webhookReorderWindowMs: 1000 });
    const a = (await createIntent(p, 'a')).body;
    const b = (await createIntent(p, 'b')).body;
    await confirm(p, a.id, 'pm_card_visa');
    await p.call('POST', `/v1/payment_intents/${b.id}/cancel`);
    const got = await hooks.waitFor(2);
    assert.deepEqual(got.map((w) => w.event.type), ['payment_intent.canceled', 'payment_intent.succeeded']);
  });

  it('when a webhook delay is set, then the event arrives no sooner than the delay', async () => {
    const { p, hooks } = await setup({ config: { PSP_WEBHOOK_DELAY_MS: 150 } });
    const intent = (await createIntent(p)).body;
    const started = performance.now();
    await confirm(p, intent.id, 'pm_card_visa');
    await hooks.waitFor(1);
    assert.ok(performance.now() - started >= 140, `arrived after ${performance.now() - started} ms`);
  });

  it('when latency is set, then every API call takes at least that long', async () => {
    const { p } = await setup({ config: { PSP_LATENCY_MS: 120 } });
    const started = performance.now();
    await createIntent(p);
    assert.ok(performance.now() - started >= 110);
  });

  it('when the timeout rate is 1, then the call is handled but answers 504 only after timeoutMs, and a retry with the key finds the intent', async () => {
    const { p } = await setup({ config: { PSP_TIMEOUT_RATE: 1 } });
    await p.setKnobs({ timeoutMs: 150 });
    const started = performance.now();
    const hung = await createIntent(p, 'order-t', 900, { 'idempotency-key': 'timeout-1' });
    assert.equal(hung.status, 504);
    assert.ok(performance.now() - started >= 140);

    // a client with a shorter timeout gives up first: retryable
    await p.setKnobs({ timeoutMs: 5000 });
    const client = new HttpPaymentGateway({ baseUrl: p.url, apiKey: TEST_API_KEY, webhookSecrets: [TEST_WEBHOOK_SECRET], timeoutMs: 100, toleranceS: 300 });
    await assert.rejects(client.createIntent({ amount: 900, currency: 'usd', orderId: 'order-t2', idempotencyKey: 'timeout-2' }),
      (e: unknown) => e instanceof GatewayError && e.retryable);

    await p.setKnobs({ timeoutRate: 0 });
    const retried = await createIntent(p, 'order-t', 900, { 'idempotency-key': 'timeout-1' });
    assert.equal(retried.status, 200);
    assert.equal(retried.headers.get('idempotent-replayed'), 'true');
    const second = await client.createIntent({ amount: 900, currency: 'usd', orderId: 'order-t2', idempotencyKey: 'timeout-2' });
    assert.equal(second.orderId, 'order-t2');
    assert.equal((await p.call<{ intents: number }>('GET', '/health')).body.intents, 2, 'each timed-out call created its intent once');
  });

  it('when the server closes while a call hangs, then close does not wait for the timeout', async () => {
    const p = await startPsp({ config: { PSP_TIMEOUT_RATE: 1 } });
    const pending = createIntent(p).catch(() => undefined);
    await new Promise((resolve) => setTimeout(resolve, 50));
    const started = performance.now();
    await p.close();
    await pending;
    assert.ok(performance.now() - started < 5000);
  });

  it('when seeded alike, then two simulators decline the same confirms', async () => {
    const outcomes: number[][] = [];
    for (let run = 0; run < 2; run++) {
      const { p } = await setup({ config: { PSP_DECLINE_RATE: 0.5, PSP_SEED: 7 } });
      const statuses: number[] = [];
      for (let i = 0; i < 12; i++) statuses.push((await confirm(p, (await createIntent(p, `o${i}`)).body.id)).status);
      outcomes.push(statuses);
    }
    assert.deepEqual(outcomes[0], outcomes[1]);
    assert.ok(outcomes[0]!.includes(200) && outcomes[0]!.includes(402), outcomes[0]!.join(','));
  });
});

describe('psp simulator: persistence', () => {
  it('when the simulator restarts on the same journal directory, then intents, refunds, events and idempotency keys are still there', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'psp-journal-'));
    cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
    const hooks = await startWebhookReceiver();
    cleanups.push(() => hooks.close());
    const config = { PSP_DATA_DIR: dir, PSP_WEBHOOK_URL: hooks.url };

    const first = await startPsp({ config });
    const paid = (await createIntent(first, 'order-p1', 800)).body;
    const open = (await createIntent(first, 'order-p2', 900, { 'idempotency-key': 'persist-key' })).body;
    await confirm(first, paid.id, 'pm_card_visa');
    const refund = (await first.call<RefundObject>('POST', '/v1/refunds', { form: { payment_intent: paid.id, amount: 100 } })).body;
    await hooks.waitFor(2);
    await first.close();
    assert.match(readFileSync(join(dir, 'journal.jsonl'), 'utf8'), new RegExp(paid.id));

    const second = await startPsp({ config });
    cleanups.push(() => second.close());
    const readPaid = await second.call<IntentObject>('GET', `/v1/payment_intents/${paid.id}`);
    assert.equal(readPaid.status, 200);
    assert.equal(readPaid.body.status, 'succeeded');
    assert.equal((await second.call<IntentObject>('GET', `/v1/payment_intents/${open.id}`)).body.status, 'requires_payment_method');
    assert.equal((await second.call<RefundObject>('GET', `/v1/refunds/${refund.id}`)).body.amount, 100);
    const replay = await createIntent(second, 'order-p2', 900, { 'idempotency-key': 'persist-key' });
    assert.equal(replay.body.id, open.id);
    const over = await second.call<ErrorBody>('POST', '/v1/refunds', { form: { payment_intent: paid.id, amount: 701 } });
    assert.equal(over.body.error.code, 'amount_too_large', 'refunded totals survive the restart');
    const events = await second.call<{ data: SimEvent[] }>('GET', '/_sim/events');
    assert.deepEqual(events.body.data.map((e) => e.type), ['payment_intent.succeeded', 'charge.refunded']);
    // the restarted simulator keeps working and keeps journaling
    assert.equal((await confirm(second, open.id, 'pm_card_visa')).body.status, 'succeeded');
  });

  it('when the journal ends with a torn line (a crash mid-write), then the simulator starts with everything before it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'psp-journal-'));
    cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
    const first = await startPsp({ config: { PSP_DATA_DIR: dir } });
    const intent = (await createIntent(first)).body;
    await first.close();
    appendFileSync(join(dir, 'journal.jsonl'), '{"at":"2030-01-01","ops":[{"op":"int');

    const second = await startPsp({ config: { PSP_DATA_DIR: dir } });
    cleanups.push(() => second.close());
    assert.equal((await second.call<IntentObject>('GET', `/v1/payment_intents/${intent.id}`)).status, 200);
    const next = (await createIntent(second, 'after-crash')).body;
    await second.close();
    cleanups.pop();
    const third = await startPsp({ config: { PSP_DATA_DIR: dir } });
    cleanups.push(() => third.close());
    assert.equal((await third.call<IntentObject>('GET', `/v1/payment_intents/${next.id}`)).status, 200);
  });

  it('when events were not delivered before a restart, then the restarted simulator delivers them', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'psp-journal-'));
    cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
    const hooks = await startWebhookReceiver();
    cleanups.push(() => hooks.close());
    const first = await startPsp({ config: { PSP_DATA_DIR: dir, PSP_WEBHOOK_URL: hooks.url, PSP_WEBHOOK_DELAY_MS: 60_000 } });
    const intent = (await createIntent(first)).body;
    await confirm(first, intent.id, 'pm_card_visa');
    await first.close();
    assert.equal(hooks.received.length, 0);

    const second = await startPsp({ config: { PSP_DATA_DIR: dir, PSP_WEBHOOK_URL: hooks.url } });
    cleanups.push(() => second.close());
    const [hook] = await hooks.waitFor(1);
    assert.equal((hook!.event as EventObject).type, 'payment_intent.succeeded');
  });
});

describe('per-request knobs', () => {
  it('when a call carries X-Sim-Knobs with latency, then only that call is slowed', async () => {
    const psp = await startPsp();
    try {
      const headers = { authorization: `Bearer ${psp.config.PSP_API_KEY}`, 'content-type': 'application/x-www-form-urlencoded' };
      const slowStart = performance.now();
      const slow = await fetch(`${psp.url}/v1/payment_intents`, { method: 'POST', headers: { ...headers, 'x-sim-knobs': '{"latencyMs":300}' }, body: 'amount=100&currency=usd&metadata[order_id]=o1' });
      const slowMs = performance.now() - slowStart;
      const fastStart = performance.now();
      const fast = await fetch(`${psp.url}/v1/payment_intents`, { method: 'POST', headers, body: 'amount=100&currency=usd&metadata[order_id]=o2' });
      const fastMs = performance.now() - fastStart;
      assert.equal(slow.status, 200);
      assert.equal(fast.status, 200);
      assert.ok(slowMs >= 300 && fastMs < slowMs, `slow ${slowMs} ms, fast ${fastMs} ms`);
      const bad = await fetch(`${psp.url}/v1/payment_intents`, { method: 'POST', headers: { ...headers, 'x-sim-knobs': 'nope' }, body: 'amount=100&currency=usd' });
      assert.equal(bad.status, 400);
    } finally {
      await psp.close();
    }
  });
});
