import { createEmitter } from '../platform/broker/outbox.ts';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { ManualClock } from '../platform/clock.ts';
import type { SelfManagedHandler } from '../platform/broker/broker.ts';
import { createLogger } from '../platform/logger.ts';
import { messageIdHeader, NodemailerMailer } from '../platform/mailer.ts';
import { scalar, startHarness, until, type Harness } from '../../test/support/harness.ts';
import { createNotifications } from './index.ts';
import { formatMoney } from './templates.ts';

const NOTIFIED = ['order.created', 'order.paid', 'order.expired', 'order.cancelled', 'payment.refunded'];

describe('templates', () => {
  it('when an amount is rendered, then it is the currency and its minor units as a decimal', () => {
    assert.equal(formatMoney(4990, 'USD'), 'USD 49.90');
    assert.equal(formatMoney(5, 'EUR'), 'EUR 0.05');
    assert.equal(formatMoney(500, 'JPY'), 'JPY 500');
    assert.equal(formatMoney(1234567, 'KWD'), 'KWD 1234.567');
  });
});

describe('notifications', () => {
  let h: Harness;
  const clock = new ManualClock(Date.now());
  const WINDOW_S = 300;
  before(async () => { h = await startHarness({ clock }); });
  after(() => h.close());

  async function placeOrder(token: string): Promise<{ id: string; totalAmount: number }> {
    const { sale } = await h.createSale({ items: [{ stock: 5 }], paymentWindowS: WINDOW_S });
    const res = await h.http.request('POST', '/v1/orders', { token, body: { items: [{ saleItemId: sale.items[0]!.id, quantity: 1 }] } });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    return res.body;
  }

  async function status(token: string, orderId: string): Promise<string> {
    return (await h.http.request('GET', `/v1/orders/${orderId}`, { token })).body.status;
  }

  /** Pays through the simulator's hosted page; the webhook arrives over HTTP. */
  async function pay(token: string, orderId: string): Promise<void> {
    const started = await h.http.request('POST', `/v1/orders/${orderId}/payment`, { token });
    assert.equal(started.status, 201, JSON.stringify(started.body));
    const click = await fetch(`${h.pspUrl}/pay/${started.body.providerPaymentId}/pay`, { method: 'POST', redirect: 'manual' });
    assert.ok(click.status < 400);
    await until(async () => {
      await h.system.broker.drain();
      return (await status(token, orderId)) === 'PAID';
    }, `order ${orderId} to be PAID`);
  }

  /** A buyer with an account row, so that emailOf finds an address. */
  async function registeredBuyer(): Promise<{ token: string; userId: string; email: string }> {
    const email = `buyer-${randomUUID()}@test.local`;
    const registered = await h.http.request('POST', '/v1/auth/register', { body: { email, password: 'buyer-password' } });
    assert.equal(registered.status, 201);
    const login = await h.http.request('POST', '/v1/auth/login', { body: { email, password: 'buyer-password' } });
    assert.equal(login.status, 200);
    return { token: login.body.token, userId: login.body.user.id, email };
  }

  /** For each order: its notifications' kinds, per channel, sorted. */
  async function kindsByOrder(orderIds: string[], channel: 'in_app' | 'email'): Promise<Record<string, string[]>> {
    const rows = await h.system.db.query<{ order_id: string; kind: string }>(
      `select o.payload->>'orderId' as order_id, n.kind from notifications n join outbox o on o.message_id = n.event_id
        where n.channel = $2 and o.payload->>'orderId' = any($1::text[]) order by n.kind`,
      [orderIds, channel],
    );
    const result: Record<string, string[]> = Object.fromEntries(orderIds.map((id) => [id, []]));
    for (const row of rows) result[row.order_id]!.push(row.kind);
    return result;
  }

  function jsonMailer(): NodemailerMailer {
    const { mailer } = h.system;
    assert.ok(mailer instanceof NodemailerMailer && mailer.kind === 'json', 'the default mailer is the JSON transport');
    return mailer;
  }

  it('when orders are placed, paid, cancelled, expired and refunded, then each event makes exactly one in-app notification', async () => {
    const alice = h.buyerToken();
    const bob = h.buyerToken();
    const carol = h.buyerToken();
    const paid = await placeOrder(alice.token);
    const cancelled = await placeOrder(alice.token);
    const expired = await placeOrder(bob.token);
    const refunded = await placeOrder(carol.token);

    await pay(alice.token, paid.id);
    assert.equal((await h.http.request('POST', `/v1/orders/${cancelled.id}/cancel`, { token: alice.token })).status, 200);
    await pay(carol.token, refunded.id);
    const adminCancel = await h.http.request('POST', `/v1/admin/orders/${refunded.id}/cancel`, { token: h.adminToken(), body: { restock: true } });
    assert.equal(adminCancel.status, 200, JSON.stringify(adminCancel.body));
    clock.advance((WINDOW_S + 1) * 1000);
    await h.system.broker.drain();
    assert.equal(await status(bob.token, expired.id), 'EXPIRED');
    assert.equal(await scalar(h.system, 'select count(*) from refunds where order_id = $1', [refunded.id]), 1);

    assert.deepEqual(await kindsByOrder([paid.id, cancelled.id, expired.id, refunded.id], 'in_app'), {
      [paid.id]: ['order_placed', 'payment_received'],
      [cancelled.id]: ['order_cancelled', 'order_placed'],
      [expired.id]: ['order_expired', 'order_placed'],
      [refunded.id]: ['order_cancelled', 'order_placed', 'payment_received', 'refund_issued'],
    });
    const unmatched = await h.system.db.query(
      `select o.message_id, o.topic, count(n.id) as n from outbox o
         left join notifications n on n.event_id = o.message_id and n.channel = 'in_app'
        where o.topic = any($1::text[]) and coalesce(o.payload->>'userId', '') <> ''
        group by o.message_id, o.topic having count(n.id) <> 1`,
      [NOTIFIED],
    );
    assert.deepEqual(unmatched, [], 'every notifiable event has exactly one in-app notification');
    assert.equal(await scalar(h.system, `select count(*) from notifications where status <> 'sent'`), 0);
    assert.deepEqual(await kindsByOrder([paid.id, cancelled.id, expired.id, refunded.id], 'email'), {
      [paid.id]: [], [cancelled.id]: [], [expired.id]: [], [refunded.id]: [],
    }, 'buyers without an account row get no email');

    const refund = await h.system.db.query<{ body: string }>(`select body from notifications where kind = 'refund_issued' and user_id = $1`, [carol.userId]);
    assert.match(refund[0]!.body, /USD 50\.00/);

    // Each buyer lists their own, newest first.
    const mine = await h.http.request('GET', '/v1/notifications', { token: alice.token });
    assert.equal(mine.status, 200);
    const list = mine.body.notifications as Array<{ id: string; kind: string; body: string; createdAt: string; channel: string }>;
    assert.deepEqual(list.map((n) => n.kind).sort(), ['order_cancelled', 'order_placed', 'order_placed', 'payment_received']);
    assert.ok(list.every((n) => n.body.includes(paid.id) || n.body.includes(cancelled.id)), 'only the caller\'s own orders');
    assert.ok(list.every((n, i) => i === 0 || list[i - 1]!.createdAt >= n.createdAt), 'newest first');
    const bobs = await h.http.request('GET', '/v1/notifications', { token: bob.token });
    assert.deepEqual(bobs.body.notifications.map((n: { kind: string }) => n.kind).sort(), ['order_expired', 'order_placed']);
    const page = await h.http.request('GET', '/v1/notifications?limit=1&offset=1', { token: alice.token });
    assert.equal(page.body.notifications.length, 1);
    assert.equal(page.body.notifications[0].id, list[1]!.id);
    assert.equal((await h.http.request('GET', '/v1/notifications', { token: h.buyerToken().token })).body.notifications.length, 0);
    assert.equal((await h.http.request('GET', '/v1/notifications')).status, 401);
    assert.equal((await h.http.request('GET', '/v1/notifications', { token: h.adminToken() })).status, 403);
  });

  it('when the buyer has an email, then the JSON transport gets exactly one message per event', async () => {
    const mailer = jsonMailer();
    const buyer = await registeredBuyer();
    const order = await placeOrder(buyer.token);
    assert.equal((await h.http.request('POST', `/v1/orders/${order.id}/cancel`, { token: buyer.token })).status, 200);
    await h.system.broker.drain();

    const emails = await h.system.db.query<{ id: string; kind: string; status: string; recipient: string }>(
      `select id, kind, status, recipient from notifications where user_id = $1 and channel = 'email' order by kind`, [buyer.userId]);
    assert.deepEqual(emails.map((e) => [e.kind, e.status, e.recipient]), [['order_cancelled', 'sent', buyer.email], ['order_placed', 'sent', buyer.email]]);
    const sent = mailer.sent.filter((m) => m.to === buyer.email);
    assert.deepEqual(sent.map((m) => m.messageId).sort(), emails.map((e) => messageIdHeader(e.id)).sort(), 'one message per email row, its id as Message-ID');
    assert.deepEqual(sent.map((m) => m.subject).sort(), [`Order ${order.id} cancelled`, `Order ${order.id} received`]);
    assert.match(sent.find((m) => m.subject.endsWith('received'))!.text, /Total: USD 50\.00/);
    assert.equal(await scalar(h.system, `select count(*) from outbox where topic = 'notification.sent' and payload->>'userId' = $1`, [buyer.userId]), 4);
  });

  it('when the broker delivers an event again (crash before its done mark), then nothing is notified twice', async () => {
    const mailer = jsonMailer();
    const buyer = await registeredBuyer();
    const order = await placeOrder(buyer.token);
    await h.system.broker.drain();
    const [event] = await h.system.db.query<{ message_id: string }>(`select message_id from outbox where topic = 'order.created' and payload->>'orderId' = $1`, [order.id]);
    const sentBefore = mailer.sent.length;

    await h.system.db.query(`delete from processed_messages where consumer = 'notifications' and message_id = $1`, [event!.message_id]);
    const requeued = await h.system.db.query(`update deliveries set status = 'pending', next_attempt_at = $2 where consumer = 'notifications' and message_id = $1 returning 1`, [event!.message_id, clock.now()]);
    assert.equal(requeued.length, 1);
    await h.system.broker.drain();

    assert.equal(await scalar(h.system, `select count(*) from deliveries where consumer = 'notifications' and message_id = $1 and status = 'done'`, [event!.message_id]), 1, 'the redelivery was handled');
    assert.deepEqual(await kindsByOrder([order.id], 'in_app'), { [order.id]: ['order_placed'] });
    assert.deepEqual(await kindsByOrder([order.id], 'email'), { [order.id]: ['order_placed'] });
    assert.equal(mailer.sent.length, sentBefore, 'no second email');
    assert.equal(await scalar(h.system, `select count(*) from outbox where topic = 'notification.sent' and payload->>'eventId' = $1`, [event!.message_id]), 2);
  });

  it('when the handler runs twice for one message, then one row per channel and one email', async () => {
    const mailer = new NodemailerMailer({ MAIL_FROM: 'test <test@flashsale.local>' });
    let handler: SelfManagedHandler | undefined;
    const userId = randomUUID();
    const notifications = createNotifications({
      db: h.system.db, clock, mailer, emailsOf: async (ids) => new Map(ids.includes(userId) ? [[userId, 'twice@test.local']] : []), log: createLogger({ LOG_LEVEL: 'silent' }),
      emit: createEmitter(clock),
    });
    notifications.subscribe({ consumeSelfManaged: (consumer, _topics, fn) => { if (consumer === 'notifications') handler = fn; } });
    const message = {
      id: randomUUID(), topic: 'order.cancelled', attempt: 1,
      payload: { orderId: randomUUID(), userId, reason: 'buyer_cancelled' },
    };
    await handler!(message);
    await handler!({ ...message, attempt: 2 });

    const rows = await notifications.listForUser(userId, { limit: 20, offset: 0 });
    assert.deepEqual(rows.map((r) => [r.channel, r.kind, r.status]).sort(), [['email', 'order_cancelled', 'sent'], ['in_app', 'order_cancelled', 'sent']]);
    assert.equal(mailer.sent.length, 1);
    assert.match(mailer.sent[0]!.subject, /cancelled/);
    await mailer.close();
  });

  it('when fifty events arrive at once, one of them twice, then each buyer gets one in-app entry and one notification.sent per event', async () => {
    const mailer = new NodemailerMailer({ MAIL_FROM: 'test <test@flashsale.local>' });
    let handler: SelfManagedHandler | undefined;
    const notifications = createNotifications({
      db: h.system.db, clock, mailer, emailsOf: async () => new Map(), log: createLogger({ LOG_LEVEL: 'silent' }), emit: createEmitter(clock),
    });
    notifications.subscribe({ consumeSelfManaged: (consumer, _topics, fn) => { if (consumer === 'notifications') handler = fn; } });
    const messages = Array.from({ length: 50 }, () => ({
      id: randomUUID(), topic: 'order.cancelled', attempt: 1, payload: { orderId: randomUUID(), userId: randomUUID(), reason: 'buyer_cancelled' },
    }));
    await Promise.all([...messages, { ...messages[0]!, attempt: 2 }].map((m) => handler!(m)));
    const ids = messages.map((m) => m.id);
    assert.equal(await scalar(h.system, `select count(*) from notifications where event_id = any($1::uuid[]) and channel = 'in_app' and status = 'sent'`, [ids]), 50);
    assert.equal(await scalar(h.system, `select count(*) from outbox where topic = 'notification.sent' and payload->>'eventId' = any($1::text[])`, [ids]), 50);
    assert.equal(mailer.sent.length, 0);
    await mailer.close();
  });

  it('when a late payment for an expired order is refunded, then the buyer is told once', async () => {
    const buyer = h.buyerToken();
    const order = await placeOrder(buyer.token);
    clock.advance((WINDOW_S + 1) * 1000);
    await h.system.broker.drain();
    assert.equal(await status(buyer.token, order.id), 'EXPIRED');
    // A payment recorded from the provider alone has no buyer on it; the order's refund request names the buyer.
    const intent = await h.system.gateway.createIntent({ amount: order.totalAmount, currency: 'USD', orderId: order.id, idempotencyKey: `late-${order.id}` });
    const click = await fetch(`${h.pspUrl}/pay/${intent.id}/pay`, { method: 'POST', redirect: 'manual' });
    assert.ok(click.status < 400);
    await until(async () => {
      await h.system.broker.drain();
      return (await scalar(h.system, `select count(*) from outbox where topic = 'payment.refunded' and payload->>'orderId' = $1`, [order.id])) === 1;
    }, 'the automatic refund');
    await h.system.broker.drain();
    const [refunded] = await h.system.db.query<{ user_id: string | null }>(`select payload->>'userId' as user_id from outbox where topic = 'payment.refunded' and payload->>'orderId' = $1`, [order.id]);
    assert.equal(refunded!.user_id, buyer.userId);

    assert.deepEqual(await kindsByOrder([order.id], 'in_app'), { [order.id]: ['order_expired', 'order_placed', 'refund_issued'] });
    assert.equal(await scalar(h.system, `select count(*) from deliveries where consumer = 'notifications' and status <> 'done'`), 0);
    assert.equal((await h.system.broker.stats()).deadLetters, 0);
  });
});
