import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { scalar, startHarness, until, type Harness } from './support/harness.ts';

/**
 * Money integrity (issue #12): one provider intent per order whatever the client sends, a capture
 * applied only when it matches its order, every other capture refunded and recorded, and the audit
 * reconciling the database with the provider's own records.
 */
describe('money: every capture matches its order or is refunded, and the books reconcile with the provider', () => {
  let h: Harness;
  before(async () => { h = await startHarness(); });
  after(() => h.close());

  async function pendingOrder(): Promise<{ token: string; orderId: string; total: number }> {
    const { sale } = await h.createSale({ items: [{ stock: 5, flashPrice: 49_900 }] });
    const { token } = h.buyerToken();
    const orderId = await h.placeOrder(token, sale.items[0]!.id);
    return { token, orderId, total: 49_900 };
  }

  async function pay(token: string, orderId: string) {
    const res = await h.http.request('POST', `/v1/orders/${orderId}/payment`, { token });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    return res.body as { id: string; orderId: string; providerPaymentId: string; hostedUrl: string };
  }

  /** The buyer presses Pay on the provider's hosted page. */
  async function pressPay(intentId: string): Promise<void> {
    const res = await fetch(`${h.pspUrl}/pay/${intentId}/pay`, { method: 'POST', redirect: 'manual' });
    assert.equal(res.status, 303);
    assert.match(res.headers.get('location') ?? '', /result=succeeded/);
  }

  /** The buyer pays, and the provider's webhook about it is lost: only asking the provider can learn of the capture. */
  async function pressPayWithWebhookDropped(intentId: string): Promise<void> {
    const knobs = (webhookDropRate: number) => h.psp.inject({ method: 'POST', url: '/_sim/knobs', headers: { authorization: `Bearer ${h.system.config.PSP_API_KEY}` }, payload: { webhookDropRate } });
    await knobs(1);
    try {
      await pressPay(intentId);
    } finally {
      await knobs(0);
    }
  }

  /** An intent made at the provider by someone else than flashsale's pay call (an attacker with a hosted page, a dashboard, a bug). */
  async function providerIntent(fields: { amount: number; currency: string; orderId: string }): Promise<string> {
    const body = new URLSearchParams({ amount: String(fields.amount), currency: fields.currency, 'metadata[order_id]': fields.orderId });
    const res = await fetch(`${h.pspUrl}/v1/payment_intents`, { method: 'POST', body, headers: { authorization: `Bearer ${h.system.config.PSP_API_KEY}` } });
    assert.equal(res.status, 200);
    return ((await res.json()) as { id: string }).id;
  }

  async function status(token: string, orderId: string): Promise<string> {
    return (await h.http.request('GET', `/v1/orders/${orderId}`, { token })).body.status;
  }

  async function rejected(intentId: string): Promise<{ reason: string; status: string } | undefined> {
    await h.system.broker.drain();
    return (await h.system.db.query<{ reason: string; status: string }>('select reason, status from rejected_captures where provider_intent_id = $1', [intentId]))[0];
  }

  async function refundedAtProvider(intentId: string): Promise<number> {
    return (await h.system.gateway.listRefunds()).filter((r) => r.paymentIntentId === intentId).reduce((sum, r) => sum + r.amount, 0);
  }

  async function auditIsClean(): Promise<void> {
    await h.system.broker.drain();
    const report = await h.system.audit({ quiet: true });
    assert.deepEqual(report.violations, []);
  }

  it('when the buyer calls pay with every spelling of the order id, at once and again, then every call answers the same one intent', async () => {
    const { token, orderId } = await pendingOrder();
    const mixed = [...orderId].map((c, i) => (i % 2 ? c.toUpperCase() : c)).join('');
    const spellings = [orderId, orderId.toUpperCase(), mixed];
    const answers = [...await Promise.all(spellings.map((id) => pay(token, id))), ...await Promise.all(spellings.map((id) => pay(token, id)))];
    const first = answers[0]!;
    for (const answer of answers) {
      assert.equal(answer.providerPaymentId, first.providerPaymentId);
      assert.equal(answer.hostedUrl, first.hostedUrl);
      assert.equal(answer.orderId, orderId);
    }
    assert.match(first.hostedUrl, new RegExp(`/pay/${first.providerPaymentId}$`), 'the page is the intent\'s own');
    const intents = (await h.system.gateway.listIntents()).filter((i) => i.orderId.toLowerCase() === orderId);
    assert.equal(intents.length, 1, 'one provider intent for the order');
    await pressPay(first.providerPaymentId);
    await until(async () => (await status(token, orderId)) === 'PAID', 'the order to be PAID');
    await auditIsClean();
  });

  it('when a second intent for an already paid order is captured, then it is refunded in full, recorded and reconciled', async () => {
    const { token, orderId, total } = await pendingOrder();
    const payment = await pay(token, orderId);
    await pressPay(payment.providerPaymentId);
    await until(async () => (await status(token, orderId)) === 'PAID', 'the order to be PAID');
    const second = await providerIntent({ amount: total, currency: 'usd', orderId });
    await pressPay(second);
    await until(async () => (await rejected(second))?.status === 'refunded', 'the second capture to be refunded');
    assert.equal((await rejected(second))?.reason, 'second_intent');
    assert.equal(await refundedAtProvider(second), total);
    assert.equal(await refundedAtProvider(payment.providerPaymentId), 0, 'the order\'s own capture is kept');
    assert.equal(await status(token, orderId), 'PAID');
    await auditIsClean();
  });

  for (const [what, amount, currency, reason] of [
    ['amount and currency', 1, 'jpy', 'amount_mismatch'],
    ['currency', 49_900, 'eur', 'currency_mismatch'],
    ['amount', 100, 'usd', 'amount_mismatch'],
  ] as const) {
    it(`when a capture naming a pending order differs in ${what}, then the order is not paid and the capture is refunded`, async () => {
      const { token, orderId } = await pendingOrder();
      const stray = await providerIntent({ amount, currency, orderId });
      await pressPay(stray);
      await until(async () => (await rejected(stray))?.status === 'refunded', 'the stray capture to be refunded');
      assert.equal((await rejected(stray))?.reason, reason);
      assert.equal(await refundedAtProvider(stray), amount);
      assert.equal(await status(token, orderId), 'PENDING_PAYMENT', 'a wrong capture pays nothing');
      const payment = await pay(token, orderId);
      await pressPay(payment.providerPaymentId);
      await until(async () => (await status(token, orderId)) === 'PAID', 'the order to be PAID by its own payment');
      await auditIsClean();
    });
  }

  it('when a capture names an order that does not exist, then it is refunded and recorded', async () => {
    const stray = await providerIntent({ amount: 500, currency: 'usd', orderId: randomUUID() });
    await pressPay(stray);
    await until(async () => (await rejected(stray))?.status === 'refunded', 'the capture to be refunded');
    assert.equal((await rejected(stray))?.reason, 'unknown_order');
    assert.equal(await refundedAtProvider(stray), 500);
    await auditIsClean();
  });

  it('when a paid order\'s capture does not match its total, then the audit and the reconciliation fail, naming the order', async () => {
    const { token, orderId } = await pendingOrder();
    const payment = await pay(token, orderId);
    await pressPay(payment.providerPaymentId);
    await until(async () => (await status(token, orderId)) === 'PAID', 'the order to be PAID');
    // The state the wrong-amount bug left behind: a PAID order whose recorded capture is 1 JPY.
    await h.system.db.query(`update payments set amount = 1, currency = 'JPY' where order_id = $1`, [orderId]);
    try {
      const report = await h.system.audit({ quiet: true });
      assert.equal(report.ok, false);
      const checks = report.violations.filter((v) => v.ids.includes(orderId)).map((v) => v.check);
      assert.ok(checks.includes('capture_matches_order'), `audit checks: ${checks.join(', ')}`);
      const reconciliation = await h.system.reconcile({ quiet: true });
      assert.equal(reconciliation.ok, false);
      assert.ok(reconciliation.mismatches.some((m) => m.ids.includes(orderId)), JSON.stringify(reconciliation.mismatches));
    } finally {
      await h.system.db.query(`update payments set amount = 49900, currency = 'USD' where order_id = $1`, [orderId]);
    }
    await auditIsClean();
  });

  it('when the provider holds a capture the database never heard of, then the reconciliation fails until the close check records it', async () => {
    const { token, orderId } = await pendingOrder();
    const payment = await pay(token, orderId);
    await pressPayWithWebhookDropped(payment.providerPaymentId);
    const before = await h.system.reconcile({ quiet: true });
    assert.equal(before.ok, false);
    assert.ok(before.mismatches.some((m) => m.ids.includes(payment.providerPaymentId)), JSON.stringify(before.mismatches));
    assert.equal(await h.system.orders.closeIfUnpaid(orderId), 'not_due');
    assert.equal(await h.system.payments.settleBeforeClose(orderId), 'paid');
    await until(async () => { await h.system.broker.drain(); return (await status(token, orderId)) === 'PAID'; }, 'the order to be PAID');
    await auditIsClean();
  });

  it('when the buyer cancels an order being paid, then the provider intent is cancelled, a retry of the cancel answers 200, and the hosted page can no longer take money', async () => {
    const { token, orderId } = await pendingOrder();
    const payment = await pay(token, orderId);
    const cancel = await h.http.request('POST', `/v1/orders/${orderId}/cancel`, { token });
    assert.equal(cancel.status, 200, JSON.stringify(cancel.body));
    assert.equal(cancel.body.status, 'CANCELLED');
    assert.equal((await h.system.gateway.retrieveIntent(payment.providerPaymentId)).status, 'canceled');
    const again = await h.http.request('POST', `/v1/orders/${orderId.toUpperCase()}/cancel`, { token });
    assert.equal(again.status, 200, JSON.stringify(again.body));
    assert.equal(again.body.status, 'CANCELLED');
    const other = h.buyerToken();
    assert.equal((await h.http.request('POST', `/v1/orders/${orderId}/cancel`, { token: other.token })).status, 404, 'another buyer cannot cancel it');
    const res = await fetch(`${h.pspUrl}/pay/${payment.providerPaymentId}/pay`, { method: 'POST', redirect: 'manual' });
    assert.match(res.headers.get('location') ?? '', /result=unchanged/);
    assert.equal(await scalar(h.system, `select count(*) from payments where order_id = $1 and status = 'canceled'`, [orderId]), 1);
    await auditIsClean();
  });

  it('when the buyer cancels an order whose payment went through unnoticed, then the cancel is refused and the order is PAID', async () => {
    const { token, orderId } = await pendingOrder();
    const payment = await pay(token, orderId);
    await pressPayWithWebhookDropped(payment.providerPaymentId);
    const cancel = await h.http.request('POST', `/v1/orders/${orderId}/cancel`, { token });
    assert.equal(cancel.status, 409, JSON.stringify(cancel.body));
    assert.equal(cancel.body.error.code, 'invalid_state');
    await until(async () => { await h.system.broker.drain(); return (await status(token, orderId)) === 'PAID'; }, 'the order to be PAID');
    await auditIsClean();
  });
});
