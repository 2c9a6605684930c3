import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../config.ts';
import { encodeForm } from './form-encoding.ts';
import { GatewayError, WebhookVerificationError } from './port.ts';
import { HttpPaymentGateway } from './http-client.ts';
import { startPsp, TEST_API_KEY, TEST_WEBHOOK_SECRET, type RunningPsp } from '../../psp/testing.ts';

const SECRET = 'whsec_current_secret_0123456789';
const OLD_SECRET = 'whsec_previous_secret_987654321';
const NOW = Date.UTC(2030, 0, 1, 12, 0, 0);
const NOW_S = NOW / 1000;

/** Signs as the provider does, written out here independently of the simulator's code. */
const sign = (body: string, t: number, secret: string) => createHmac('sha256', secret).update(`${t}.${body}`).digest('hex');
const header = (body: string, t: number, ...secrets: string[]) => [`t=${t}`, ...secrets.map((s) => `v1=${sign(body, t, s)}`)].join(',');

const client = (secrets: string[] = [SECRET], overrides: Partial<ConstructorParameters<typeof HttpPaymentGateway>[0]> = {}) =>
  new HttpPaymentGateway({ baseUrl: 'http://127.0.0.1:9', apiKey: 'sk_test_whatever', webhookSecrets: secrets, timeoutMs: 1000, toleranceS: 300, ...overrides });

const intentEvent = JSON.stringify({
  id: 'evt_1', object: 'event', type: 'payment_intent.succeeded', created: NOW_S,
  data: { object: {
    id: 'pi_1', object: 'payment_intent', amount: 1500, currency: 'usd', status: 'succeeded', metadata: { order_id: 'order-9' },
    last_payment_error: null, next_action: null,
  } },
});

const isVerificationError = (pattern: RegExp) => (error: unknown) => {
  assert.ok(error instanceof WebhookVerificationError, String(error));
  assert.match(error.message, pattern);
  return true;
};

describe('HttpPaymentGateway.verifyWebhook', () => {
  it('when the signature matches and the timestamp is fresh, then the event is parsed with its intent', () => {
    const event = client().verifyWebhook(intentEvent, header(intentEvent, NOW_S, SECRET), NOW);
    assert.equal(event.id, 'evt_1');
    assert.equal(event.type, 'payment_intent.succeeded');
    assert.equal(event.created, NOW_S);
    assert.deepEqual(event.intent, { id: 'pi_1', amount: 1500, currency: 'usd', status: 'succeeded', orderId: 'order-9', hostedUrl: '', lastError: null });
    assert.equal(event.intentId, 'pi_1');
    assert.equal(event.refund, undefined);
  });

  it('when the body was altered after signing, then it is rejected', () => {
    const forged = intentEvent.replace('1500', '1');
    assert.throws(() => client().verifyWebhook(forged, header(intentEvent, NOW_S, SECRET), NOW), isVerificationError(/no signature matches/));
  });

  it('when the signature is forged (not hex of the right length, or random), then it is rejected', () => {
    assert.throws(() => client().verifyWebhook(intentEvent, `t=${NOW_S},v1=${'ab'.repeat(32)}`, NOW), isVerificationError(/no signature matches/));
    assert.throws(() => client().verifyWebhook(intentEvent, `t=${NOW_S},v1=abc`, NOW), isVerificationError(/no v1 signature/));
  });

  it('when it was signed with another secret, then it is rejected', () => {
    assert.throws(() => client().verifyWebhook(intentEvent, header(intentEvent, NOW_S, 'whsec_attacker_guess_000000'), NOW), isVerificationError(/no signature matches/));
  });

  it('when the timestamp is older or newer than the tolerance, then it is rejected (a replay), and inside it is accepted', () => {
    for (const t of [NOW_S - 301, NOW_S + 301, NOW_S - 86_400]) {
      assert.throws(() => client().verifyWebhook(intentEvent, header(intentEvent, t, SECRET), NOW), isVerificationError(/tolerance/), `t=${t}`);
    }
    for (const t of [NOW_S - 299, NOW_S + 299]) assert.equal(client().verifyWebhook(intentEvent, header(intentEvent, t, SECRET), NOW).id, 'evt_1');
  });

  it('when the header is missing, empty or lacks a part, then it is rejected', () => {
    assert.throws(() => client().verifyWebhook(intentEvent, undefined, NOW), isVerificationError(/missing/));
    assert.throws(() => client().verifyWebhook(intentEvent, '', NOW), isVerificationError(/missing/));
    assert.throws(() => client().verifyWebhook(intentEvent, `v1=${sign(intentEvent, NOW_S, SECRET)}`, NOW), isVerificationError(/timestamp/));
    assert.throws(() => client().verifyWebhook(intentEvent, `t=${NOW_S}`, NOW), isVerificationError(/v1/));
    assert.throws(() => client().verifyWebhook(intentEvent, `t=${NOW_S},v0=${sign(intentEvent, NOW_S, SECRET)}`, NOW), isVerificationError(/v1/));
    assert.throws(() => client().verifyWebhook(intentEvent, 'garbage', NOW), isVerificationError(/timestamp/));
  });

  it('when the secret is being rotated, then either accepted secret and a header with several v1 entries verify', () => {
    const rotating = client([SECRET, OLD_SECRET]);
    assert.equal(rotating.verifyWebhook(intentEvent, header(intentEvent, NOW_S, OLD_SECRET), NOW).id, 'evt_1');
    assert.equal(rotating.verifyWebhook(intentEvent, header(intentEvent, NOW_S, SECRET), NOW).id, 'evt_1');
    // the provider signs with both during the roll: one unknown secret among them is fine
    assert.equal(client([SECRET]).verifyWebhook(intentEvent, header(intentEvent, NOW_S, 'whsec_unknown_to_us_12345', SECRET), NOW).id, 'evt_1');
    assert.throws(() => client([OLD_SECRET]).verifyWebhook(intentEvent, header(intentEvent, NOW_S, SECRET), NOW), WebhookVerificationError);
  });

  it('when a signed body is not an event, then it is rejected', () => {
    for (const body of ['not json', '{"id":"x"}', '[]']) {
      assert.throws(() => client().verifyWebhook(body, header(body, NOW_S, SECRET), NOW), WebhookVerificationError, body);
    }
  });

  it('when the event is charge.refunded, then it carries the refund and its payment intent id, and no intent', () => {
    const body = JSON.stringify({
      id: 'evt_r', object: 'event', type: 'charge.refunded', created: NOW_S,
      data: { object: { id: 're_1', object: 'refund', amount: 300, currency: 'usd', payment_intent: 'pi_7', status: 'succeeded' } },
    });
    const event = client().verifyWebhook(body, header(body, NOW_S, SECRET), NOW);
    assert.equal(event.type, 'charge.refunded');
    assert.equal(event.intent, undefined);
    assert.equal(event.intentId, 'pi_7');
    assert.deepEqual(event.refund, { id: 're_1', paymentIntentId: 'pi_7', amount: 300, status: 'succeeded' });
  });
});

describe('HttpPaymentGateway.verifyWebhook: text the database cannot store', () => {
  /** A signed event like `intentEvent`, with one field's text replaced. */
  const eventWith = (field: 'id' | 'type' | 'intent id' | 'currency' | 'order_id' | 'last_payment_error' | 'refund id' | 'payment_intent', text: string) => {
    const refundEvent = field === 'refund id' || field === 'payment_intent';
    const object = refundEvent
      ? { id: field === 'refund id' ? text : 're_1', object: 'refund', amount: 300, currency: 'usd', payment_intent: field === 'payment_intent' ? text : 'pi_1', status: 'succeeded' }
      : {
        id: field === 'intent id' ? text : 'pi_1', object: 'payment_intent', amount: 1500, currency: field === 'currency' ? text : 'usd', status: 'succeeded',
        metadata: { order_id: field === 'order_id' ? text : 'order-9' },
        last_payment_error: field === 'last_payment_error' ? { message: text } : null, next_action: null,
      };
    return JSON.stringify({
      id: field === 'id' ? text : 'evt_1', object: 'event', type: field === 'type' ? text : refundEvent ? 'charge.refunded' : 'payment_intent.succeeded', created: NOW_S,
      data: { object },
    });
  };
  const FIELDS = ['id', 'type', 'intent id', 'currency', 'order_id', 'last_payment_error', 'refund id', 'payment_intent'] as const;
  const BAD_TEXT: Array<[string, string]> = [['a NUL', 'x\u0000y'], ['a lone high surrogate', 'x\ud800y'], ['a lone low surrogate', '\udc00'], ['a surrogate pair reversed', '\udc00\ud800']];

  const isMalformed = (field: string) => (error: unknown) => {
    assert.ok(error instanceof Error, String(error));
    assert.ok(!(error instanceof WebhookVerificationError), `${field}: a signed event is genuine; malformed, not unverified`);
    assert.match(error.message, /cannot be stored/);
    assert.ok(error.message.includes(field), `${field}: ${error.message}`);
    return true;
  };

  for (const [what, text] of BAD_TEXT) {
    it(`when a signed event's identifiers or text hold ${what}, then it is rejected as malformed (a plain Error, not a verification failure)`, () => {
      for (const field of FIELDS) {
        const body = eventWith(field, text);
        assert.ok(body.includes('\\u'), 'the JSON carries the escape, as a provider would send it');
        assert.throws(() => client().verifyWebhook(body, header(body, NOW_S, SECRET), NOW), isMalformed(field), field);
      }
    });
  }

  it('when the text is well-formed (a surrogate pair, accents), then the event is accepted unchanged', () => {
    const body = eventWith('order_id', 'order-😀-é');
    assert.equal(client().verifyWebhook(body, header(body, NOW_S, SECRET), NOW).intent?.orderId, 'order-😀-é');
    const refund = eventWith('refund id', 're_😀');
    assert.equal(client().verifyWebhook(refund, header(refund, NOW_S, SECRET), NOW).refund?.id, 're_😀');
  });
});

describe('HttpPaymentGateway against the simulator', () => {
  let p: RunningPsp;
  let gw: HttpPaymentGateway;
  before(async () => {
    p = await startPsp();
    gw = new HttpPaymentGateway({ baseUrl: p.url, apiKey: TEST_API_KEY, webhookSecrets: [TEST_WEBHOOK_SECRET], timeoutMs: 2000, toleranceS: 300 });
  });
  after(() => p.close());

  const isGatewayError = (retryable: boolean, status?: number) => (error: unknown) => {
    assert.ok(error instanceof GatewayError, String(error));
    assert.equal(error.retryable, retryable, error.message);
    assert.equal(error.status, status, error.message);
    return true;
  };

  it('when an intent is created, then it maps to a PaymentIntent, and the same idempotency key gives the same one', async () => {
    const intent = await gw.createIntent({ amount: 2599, currency: 'EUR', orderId: 'order-77', idempotencyKey: 'order-77:intent' });
    assert.match(intent.id, /^pi_/);
    assert.equal(intent.amount, 2599);
    assert.equal(intent.currency, 'eur');
    assert.equal(intent.status, 'requires_payment_method');
    assert.equal(intent.orderId, 'order-77');
    assert.equal(intent.hostedUrl, `${p.url}/pay/${intent.id}`);
    assert.equal(intent.lastError, null);
    const again = await gw.createIntent({ amount: 2599, currency: 'EUR', orderId: 'order-77', idempotencyKey: 'order-77:intent' });
    assert.equal(again.id, intent.id);
    assert.deepEqual(await gw.retrieveIntent(intent.id), intent);
  });

  it('when the intent is paid and refunded, then the refund maps and the same key gives the same refund', async () => {
    const intent = await gw.createIntent({ amount: 1000, currency: 'usd', orderId: 'order-r', idempotencyKey: 'order-r:intent' });
    await fetch(`${p.url}/pay/${intent.id}/pay`, { method: 'POST', redirect: 'manual' });
    assert.equal((await gw.retrieveIntent(intent.id)).status, 'succeeded');
    const refund = await gw.refund({ intentId: intent.id, amount: 400, idempotencyKey: 'order-r:refund' });
    assert.deepEqual({ ...refund, id: undefined }, { id: undefined, paymentIntentId: intent.id, amount: 400, status: 'succeeded' });
    assert.equal((await gw.refund({ intentId: intent.id, amount: 400, idempotencyKey: 'order-r:refund' })).id, refund.id);
  });

  it('when the provider answers 4xx, then the GatewayError is not retryable and carries the status', async () => {
    await assert.rejects(gw.retrieveIntent('pi_does_not_exist'), isGatewayError(false, 404));
    const unpaid = await gw.createIntent({ amount: 100, currency: 'usd', orderId: 'o-4xx', idempotencyKey: 'o-4xx' });
    await assert.rejects(gw.refund({ intentId: unpaid.id, amount: 100, idempotencyKey: 'o-4xx:refund' }), isGatewayError(false, 400));
    const wrongKey = new HttpPaymentGateway({ baseUrl: p.url, apiKey: 'sk_test_not_the_key', webhookSecrets: [SECRET], timeoutMs: 2000, toleranceS: 300 });
    await assert.rejects(wrongKey.retrieveIntent(unpaid.id), isGatewayError(false, 401));
  });

  it('when an unpaid intent is cancelled, twice, then both calls return it canceled; a paid one throws a non-retryable error', async () => {
    const open = await gw.createIntent({ amount: 100, currency: 'usd', orderId: 'o-cancel', idempotencyKey: 'o-cancel' });
    assert.equal((await gw.cancelIntent(open.id)).status, 'canceled');
    assert.equal((await gw.cancelIntent(open.id)).status, 'canceled');
    const paid = await gw.createIntent({ amount: 100, currency: 'usd', orderId: 'o-paid', idempotencyKey: 'o-paid' });
    await fetch(`${p.url}/pay/${paid.id}/pay`, { method: 'POST', redirect: 'manual' });
    await assert.rejects(gw.cancelIntent(paid.id), isGatewayError(false, 400));
  });

  it('when the provider is slower than the client timeout, then the error is retryable', async () => {
    await p.setKnobs({ latencyMs: 500 });
    try {
      const impatient = new HttpPaymentGateway({ baseUrl: p.url, apiKey: TEST_API_KEY, webhookSecrets: [SECRET], timeoutMs: 50, toleranceS: 300 });
      await assert.rejects(impatient.retrieveIntent('pi_x'), isGatewayError(true, undefined));
    } finally {
      await p.setKnobs({ latencyMs: 0 });
    }
  });
});

describe('HttpPaymentGateway transport failures', () => {
  const listen = async (handler: Parameters<typeof createServer>[1]): Promise<{ server: Server; url: string }> => {
    const server = createServer(handler);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
  };
  const stop = (server: Server) => new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });

  it('when nothing listens on the port, then the error is retryable', async () => {
    const { server, url } = await listen((_req, res) => res.end());
    await stop(server);
    await assert.rejects(client([SECRET], { baseUrl: url }).retrieveIntent('pi_1'), (error: unknown) => {
      assert.ok(error instanceof GatewayError);
      assert.equal(error.retryable, true);
      assert.equal(error.status, undefined);
      assert.match(error.message, /network error/);
      return true;
    });
  });

  it('when the provider answers 5xx, 429 or 409, then the error is retryable with the status; Stripe-Should-Retry overrides', async () => {
    const answers: Array<[number, Record<string, string>]> = [[503, {}], [500, {}], [429, {}], [409, {}], [500, { 'stripe-should-retry': 'false' }], [400, { 'stripe-should-retry': 'true' }]];
    const { server, url } = await listen((_req, res) => {
      const [status, headers] = answers.shift()!;
      res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify({ error: { type: 'api_error', message: 'boom' } }));
    });
    try {
      const gw = client([SECRET], { baseUrl: url });
      for (const [status, retryable] of [[503, true], [500, true], [429, true], [409, true], [500, false], [400, true]] as const) {
        await assert.rejects(gw.retrieveIntent('pi_1'), (error: unknown) => {
          assert.ok(error instanceof GatewayError);
          assert.equal(error.status, status);
          assert.equal(error.retryable, retryable, `${status}`);
          return true;
        });
      }
    } finally {
      await stop(server);
    }
  });

  it('when a 2xx answer is not JSON, then the error is retryable', async () => {
    const { server, url } = await listen((_req, res) => res.writeHead(200).end('<html>proxy page</html>'));
    try {
      await assert.rejects(client([SECRET], { baseUrl: url }).retrieveIntent('pi_1'), (e: unknown) => e instanceof GatewayError && e.retryable);
    } finally {
      await stop(server);
    }
  });

  it('when the request is sent, then it is form-encoded with bracket notation, the bearer key and the idempotency key', async () => {
    let seen: { headers: Record<string, string | string[] | undefined>; body: string; url: string | undefined } | undefined;
    const { server, url } = await listen((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        seen = { headers: req.headers, body, url: req.url };
        res.writeHead(200, { 'content-type': 'application/json' })
          .end(JSON.stringify({ id: 'pi_z', object: 'payment_intent', amount: 5, currency: 'usd', status: 'requires_payment_method', metadata: { order_id: 'o z&1' } }));
      });
    });
    try {
      const intent = await client([SECRET], { baseUrl: `${url}/`, apiKey: 'sk_test_abc12345' }).createIntent({ amount: 5, currency: 'USD', orderId: 'o z&1', idempotencyKey: 'k-1' });
      assert.equal(intent.orderId, 'o z&1');
      assert.equal(seen?.url, '/v1/payment_intents');
      assert.equal(seen?.headers.authorization, 'Bearer sk_test_abc12345');
      assert.equal(seen?.headers['idempotency-key'], 'k-1');
      assert.equal(seen?.headers['content-type'], 'application/x-www-form-urlencoded');
      assert.deepEqual(Object.fromEntries(new URLSearchParams(seen?.body)), { amount: '5', currency: 'usd', 'metadata[order_id]': 'o z&1' });
      assert.equal(encodeForm({ a: 1, m: { k: 'v' } }), 'a=1&m%5Bk%5D=v');
    } finally {
      await stop(server);
    }
  });

  it('when built from the config, then PSP_WEBHOOK_SECRET may list several secrets', () => {
    const config = loadConfig({ PSP_WEBHOOK_SECRET: `${SECRET},${OLD_SECRET}` });
    const gw = HttpPaymentGateway.fromConfig(config);
    assert.equal(gw.verifyWebhook(intentEvent, header(intentEvent, Math.floor(Date.now() / 1000), OLD_SECRET), Date.now()).id, 'evt_1');
  });
});
