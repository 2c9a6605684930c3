import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { PspError } from './errors.ts';
import { FORM_LIMITS, parseForm } from './form.ts';
import type { IntentObject } from './index.ts';
import { startPsp, TEST_API_KEY, type RunningPsp } from './testing.ts';

type ErrorBody = { error: { type: string; code?: string; param?: string; message: string } };

/** `a[][]…=1` with `levels` pairs of brackets: the body that used to stall the simulator at 30,000. */
const deepKey = (levels: number) => `a${'[]'.repeat(levels)}`;

const refusedFor = (limit: RegExp) => (error: unknown) => {
  assert.ok(error instanceof PspError, `a PspError, not ${String(error)}`);
  assert.equal(error.status, 400);
  assert.equal(error.type, 'invalid_request_error');
  assert.equal(error.code, 'parameter_invalid');
  assert.match(error.message, limit);
  return true;
};

describe('parseForm: Stripe bracket notation', () => {
  it('when keys use brackets, then objects, appended arrays and indexed arrays are built, values staying strings', () => {
    const form = parseForm('amount=100&metadata[order_id]=o1&expand[]=a&expand[]=b&items[0][price]=p&items[1][qty]=2&a[b][c]=deep');
    assert.deepEqual(form, {
      amount: '100',
      metadata: { order_id: 'o1' },
      expand: ['a', 'b'],
      items: [{ price: 'p' }, { qty: '2' }],
      a: { b: { c: 'deep' } },
    });
  });

  it('when a key names __proto__, constructor or prototype, then it is dropped and no prototype is touched', () => {
    const form = parseForm('__proto__[polluted]=1&a[__proto__][polluted]=1&constructor[prototype][polluted]=1&b[prototype]=1&ok=1');
    assert.deepEqual(form, { ok: '1' });
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });

  it('when a key is malformed, then that pair is dropped and the rest is kept', () => {
    assert.deepEqual(parseForm('[a]=1&a[b=1&a]b=1&a[b]c=1&a[[b]]=1&a[b]]=1&=1&good[x]=2'), { good: { x: '2' } });
  });

  it('when an array index is not a small number, then that pair is dropped', () => {
    assert.deepEqual(parseForm('a[]=x&a[1001]=y&a[-1]=y&a[k]=y&a[1e3]=y&a[1]=z'), { a: ['x', 'z'] });
  });
});

describe('parseForm: limits', () => {
  it(`when a key nests ${FORM_LIMITS.maxDepth} brackets deep, then it parses, and one more is refused naming the limit`, () => {
    const levels = FORM_LIMITS.maxDepth;
    assert.deepEqual(parseForm(`${deepKey(levels)}=1`), { a: [[[[['1']]]]] });
    assert.throws(() => parseForm(`${deepKey(levels + 1)}=1`), refusedFor(new RegExp(`at most ${levels} levels`)));
    assert.throws(() => parseForm(`x=1&a[b][c][d][e][f][g]=1`), refusedFor(/nested too deep/));
  });

  it(`when a body has ${FORM_LIMITS.maxPairs} pairs, then it parses, and one more is refused naming the limit`, () => {
    const pairs = (n: number) => Array.from({ length: n }, (_, i) => `k${i}=v`).join('&');
    assert.equal(Object.keys(parseForm(pairs(FORM_LIMITS.maxPairs))).length, FORM_LIMITS.maxPairs);
    assert.throws(() => parseForm(pairs(FORM_LIMITS.maxPairs + 1)), refusedFor(new RegExp(`at most ${FORM_LIMITS.maxPairs}`)));
  });

  it(`when a key is ${FORM_LIMITS.maxKeyLength} characters, then it parses, and a longer one is refused naming the limit`, () => {
    const name = (length: number) => 'k'.repeat(length);
    assert.deepEqual(parseForm(`${name(FORM_LIMITS.maxKeyLength)}=1`), { [name(FORM_LIMITS.maxKeyLength)]: '1' });
    assert.throws(() => parseForm(`${name(FORM_LIMITS.maxKeyLength + 1)}=1`), refusedFor(new RegExp(`at most ${FORM_LIMITS.maxKeyLength} characters`)));
  });

  it('when a key has 30,000 levels of brackets (60 KB), then it is refused as a 400 PspError, not a stack overflow', () => {
    assert.throws(() => parseForm(`${deepKey(30_000)}=1`), refusedFor(/at most/));
  });

  it('when the refused key is huge, then the error names only its start', () => {
    assert.throws(() => parseForm(`${deepKey(30_000)}=1`), (error: unknown) => {
      assert.ok(error instanceof PspError);
      assert.ok(error.message.length < 300, `message of ${error.message.length} characters`);
      assert.ok((error.param ?? '').length <= 40);
      return true;
    });
  });
});

describe('psp simulator: hostile request bodies over HTTP', () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    while (cleanups.length) await cleanups.pop()!();
  });

  /** Runs `work`, taking turns on the event loop meanwhile; the longest wait for a turn is how long the process stalled. */
  async function longestEventLoopStall<T>(work: Promise<T>): Promise<{ result: T; stalledMs: number }> {
    let settled = false;
    const result = work.finally(() => {
      settled = true;
    });
    let stalledMs = 0;
    let last = performance.now();
    while (!settled) {
      await new Promise((resolve) => setImmediate(resolve));
      const now = performance.now();
      stalledMs = Math.max(stalledMs, now - last);
      last = now;
    }
    return { result: await result, stalledMs };
  }

  const postForm = (p: RunningPsp, path: string, body: string, headers: Record<string, string> = {}) =>
    fetch(`${p.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body, redirect: 'manual' });

  it('when 30,000 levels of brackets are posted to the hosted page and the API, then both answer 400 and /health answers meanwhile', async () => {
    const p = await startPsp();
    cleanups.push(() => p.close());
    const intent = (await p.call<IntentObject>('POST', '/v1/payment_intents', { form: { amount: 100, currency: 'usd' } })).body;
    const body = `${deepKey(30_000)}=1`;
    assert.ok(body.length < p.config.BODY_LIMIT_BYTES, 'the body is within the body limit, so the parser sees it');

    const { result: [page, api, health], stalledMs } = await longestEventLoopStall(Promise.all([
      postForm(p, `/pay/${intent.id}/pay`, body),
      postForm(p, '/v1/payment_intents', body, { authorization: `Bearer ${TEST_API_KEY}` }),
      fetch(`${p.url}/health`),
    ]));
    for (const [what, res] of [['hosted page', page], ['API', api]] as const) {
      assert.equal(res.status, 400, what);
      const error = ((await res.json()) as ErrorBody).error;
      assert.equal(error.type, 'invalid_request_error', what);
      assert.equal(error.code, 'parameter_invalid', what);
    }
    assert.equal(health.status, 200);
    // A linear parse of 60 KB takes a few ms; the quadratic, recursive one blocked the loop for 9-12 s.
    // The bound is far from both, so a loaded machine's scheduling noise cannot fail it.
    assert.ok(stalledMs < 3000, `the event loop stalled for ${Math.round(stalledMs)} ms`);
    assert.equal((await p.call<IntentObject>('GET', `/v1/payment_intents/${intent.id}`)).body.status, 'requires_payment_method', 'the deep Pay did not pay');
  });

  it('when a JSON body nests deeper than the form limit (up to 30,000 levels), then 400 naming the limit, not a 500', async () => {
    const p = await startPsp();
    cleanups.push(() => p.close());
    const nested = (levels: number) => `{"amount":100,"currency":"usd","x":${'['.repeat(levels)}${']'.repeat(levels)}}`;
    for (const levels of [FORM_LIMITS.maxDepth + 1, 30_000]) {
      const res = await fetch(`${p.url}/v1/payment_intents`, { method: 'POST', headers: { authorization: `Bearer ${TEST_API_KEY}`, 'content-type': 'application/json', 'idempotency-key': `deep-${levels}` }, body: nested(levels) });
      assert.equal(res.status, 400, `${levels} levels`);
      const error = ((await res.json()) as ErrorBody).error;
      assert.equal(error.code, 'parameter_invalid', `${levels} levels`);
      assert.match(error.message, new RegExp(`at most ${FORM_LIMITS.maxDepth} levels`));
    }
    const deepest = await p.call<IntentObject>('POST', '/v1/payment_intents', { json: { amount: 100, currency: 'usd', metadata: { order_id: 'o1' }, x: [[[[[]]]]] } });
    assert.equal(deepest.status, 200, deepest.text);
  });

  it('when too many pairs or a too-deep key are posted to the API, then 400 naming the limit, and a normal form still works', async () => {
    const p = await startPsp();
    cleanups.push(() => p.close());
    const auth = { authorization: `Bearer ${TEST_API_KEY}` };
    const many = Array.from({ length: FORM_LIMITS.maxPairs - 1 }, (_, i) => `k${i}=v`).join('&');
    const tooMany = await postForm(p, '/v1/payment_intents', `amount=100&currency=usd&${many}`, auth);
    assert.equal(tooMany.status, 400);
    assert.match(((await tooMany.json()) as ErrorBody).error.message, new RegExp(`at most ${FORM_LIMITS.maxPairs}`));
    const deep = await postForm(p, '/v1/payment_intents', `amount=100&currency=usd&metadata${'[x]'.repeat(FORM_LIMITS.maxDepth + 1)}=1`, auth);
    assert.equal(deep.status, 400);
    assert.match(((await deep.json()) as ErrorBody).error.message, /nested too deep/);
    const fine = await postForm(p, '/v1/payment_intents', 'amount=100&currency=usd&metadata[order_id]=o1', auth);
    assert.equal(fine.status, 200);
  });
});
