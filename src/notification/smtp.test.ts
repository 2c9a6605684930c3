import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { SMTPServer, type SMTPServerError } from 'smtp-server';
import { ManualClock } from '../platform/clock.ts';
import { messageIdHeader } from '../platform/mailer.ts';
import { scalar, startHarness, type Harness } from '../../test/support/harness.ts';

interface Received {
  messageId: string;
  subject: string;
  to: string[];
}

/** A real SMTP server on port 0 that records what it accepts and can refuse the next messages with a 451. */
async function startSmtpServer() {
  const accepted: Received[] = [];
  const refused: Received[] = [];
  let refuseNext = 0;
  const waiters: Array<{ count: number; resolve: () => void }> = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        const message = parse(Buffer.concat(chunks).toString('utf8'), session.envelope.rcptTo.map((r) => r.address));
        if (refuseNext > 0) {
          refuseNext -= 1;
          refused.push(message);
          const error: SMTPServerError = Object.assign(new Error('mailbox busy, try again later'), { responseCode: 451 });
          callback(error);
          return;
        }
        accepted.push(message);
        for (const waiter of waiters.filter((w) => accepted.length >= w.count)) {
          waiters.splice(waiters.indexOf(waiter), 1);
          waiter.resolve();
        }
        callback();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.server.address() as AddressInfo;
  return {
    url: `smtp://127.0.0.1:${port}`,
    accepted,
    refused,
    refuse(n: number) { refuseNext = n; },
    /** Resolves once `count` messages in all have been accepted. */
    acceptedCount(count: number): Promise<void> {
      if (accepted.length >= count) return Promise.resolve();
      return new Promise((resolve) => waiters.push({ count, resolve }));
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** The headers we count by, from a raw message (folded lines unfolded). */
function parse(raw: string, to: string[]): Received {
  const head = raw.split(/\r?\n\r?\n/, 1)[0]!.replace(/\r?\n[ \t]+/g, ' ');
  const header = (name: string) => head.split(/\r?\n/).find((l) => l.toLowerCase().startsWith(`${name.toLowerCase()}:`))?.slice(name.length + 1).trim() ?? '';
  return { messageId: header('Message-ID'), subject: header('Subject'), to };
}

function countBy(items: readonly Received[], key: (r: Received) => string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const item of items) counts[key(item)] = (counts[key(item)] ?? 0) + 1;
  return counts;
}

describe('notifications over SMTP', () => {
  let smtp: Awaited<ReturnType<typeof startSmtpServer>>;
  let h: Harness;
  const clock = new ManualClock(Date.now());
  const BACKOFF_MS = 100;
  before(async () => {
    smtp = await startSmtpServer();
    h = await startHarness({ clock, config: { SMTP_URL: smtp.url, BROKER_BACKOFF_BASE_MS: BACKOFF_MS } });
  });
  after(async () => {
    await h.close();
    await smtp.close();
  });

  /** Buyers with an account row: emailOf reads the users table. */
  async function registeredBuyer(): Promise<{ token: string; userId: string; email: string }> {
    const email = `smtp-${randomUUID()}@test.local`;
    assert.equal((await h.http.request('POST', '/v1/auth/register', { body: { email, password: 'buyer-password' } })).status, 201);
    const login = await h.http.request('POST', '/v1/auth/login', { body: { email, password: 'buyer-password' } });
    assert.equal(login.status, 200);
    return { token: login.body.token, userId: login.body.user.id, email };
  }

  async function placeOrder(token: string): Promise<string> {
    const { sale } = await h.createSale({ items: [{ stock: 5 }] });
    const res = await h.http.request('POST', '/v1/orders', { token, body: { items: [{ saleItemId: sale.items[0]!.id, quantity: 1 }] } });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    return res.body.id;
  }

  async function cancel(token: string, orderId: string): Promise<void> {
    assert.equal((await h.http.request('POST', `/v1/orders/${orderId}/cancel`, { token })).status, 200);
  }

  async function emailRows(userId: string) {
    return h.system.db.query<{ id: string; kind: string; status: string; event_id: string }>(
      `select id, kind, status, event_id from notifications where user_id = $1 and channel = 'email' order by kind`, [userId]);
  }

  const mine = (email: string) => smtp.accepted.filter((m) => m.to.includes(email));

  it('when an order is placed and cancelled, then the SMTP server receives exactly one message per event', async () => {
    assert.equal(h.system.mailer.kind, 'smtp');
    const buyer = await registeredBuyer();
    const orderId = await placeOrder(buyer.token);
    await cancel(buyer.token, orderId);
    await h.system.broker.drain();
    await smtp.acceptedCount(2);

    const rows = await emailRows(buyer.userId);
    assert.deepEqual(rows.map((r) => [r.kind, r.status]), [['order_cancelled', 'sent'], ['order_placed', 'sent']]);
    const received = mine(buyer.email);
    assert.deepEqual(countBy(received, (m) => m.messageId), Object.fromEntries(rows.map((r) => [messageIdHeader(r.id), 1])));
    assert.deepEqual(countBy(received, (m) => m.subject), { [`Order ${orderId} received`]: 1, [`Order ${orderId} cancelled`]: 1 });
  });

  it('when the server refuses the first attempt with a 451, then the retry delivers it and each event still ends with one accepted message', async () => {
    const buyer = await registeredBuyer();
    smtp.refuse(1);
    const orderId = await placeOrder(buyer.token);
    await h.system.broker.drain();

    assert.equal(smtp.refused.filter((m) => m.to.includes(buyer.email)).length, 1, 'the first attempt was refused');
    assert.equal(mine(buyer.email).length, 0);
    assert.deepEqual((await emailRows(buyer.userId)).map((r) => [r.kind, r.status]), [['order_placed', 'pending']], 'a refused email stays pending');
    assert.equal(await scalar(h.system, `select count(*) from notifications where user_id = $1 and channel = 'in_app' and status = 'sent'`, [buyer.userId]), 1, 'the in-app entry is not held back');
    const [delivery] = await h.system.db.query<{ status: string; attempts: number }>(
      `select d.status, d.attempts from deliveries d join notifications n on n.event_id = d.message_id
        where d.consumer = 'notifications' and n.user_id = $1 and n.channel = 'email'`, [buyer.userId]);
    assert.deepEqual(delivery, { status: 'pending', attempts: 1 });

    const before = smtp.accepted.length;
    clock.advance(BACKOFF_MS);
    await h.system.broker.drain();
    await smtp.acceptedCount(before + 1);
    await cancel(buyer.token, orderId);
    await h.system.broker.drain();
    await smtp.acceptedCount(before + 2);

    const rows = await emailRows(buyer.userId);
    assert.deepEqual(rows.map((r) => [r.kind, r.status]), [['order_cancelled', 'sent'], ['order_placed', 'sent']]);
    const received = mine(buyer.email);
    assert.deepEqual(countBy(received, (m) => m.messageId), Object.fromEntries(rows.map((r) => [messageIdHeader(r.id), 1])));
    assert.deepEqual(countBy(received, (m) => m.subject), { [`Order ${orderId} received`]: 1, [`Order ${orderId} cancelled`]: 1 });
    assert.equal(await scalar(h.system, `select count(*) from outbox where topic = 'notification.sent' and payload->>'userId' = $1 and payload->>'channel' = 'email'`, [buyer.userId]), 2);
  });

  it('when an event is redelivered after its email was sent, then no second message goes out', async () => {
    const buyer = await registeredBuyer();
    const first = smtp.accepted.length;
    await placeOrder(buyer.token);
    await h.system.broker.drain();
    await smtp.acceptedCount(first + 1);
    const [row] = await emailRows(buyer.userId);
    assert.equal(mine(buyer.email).length, 1);

    await h.system.db.query(`delete from processed_messages where consumer = 'notifications' and message_id = $1`, [row!.event_id]);
    await h.system.db.query(`update deliveries set status = 'pending', next_attempt_at = $2 where consumer = 'notifications' and message_id = $1`, [row!.event_id, clock.now()]);
    await h.system.broker.drain();
    assert.equal(mine(buyer.email).length, 1);
  });

  it('when the acceptance was never recorded (crash after the server took it), then the resend carries the same Message-ID', async () => {
    const buyer = await registeredBuyer();
    const first = smtp.accepted.length;
    await placeOrder(buyer.token);
    await h.system.broker.drain();
    await smtp.acceptedCount(first + 1);
    const [row] = await emailRows(buyer.userId);

    // What a crash between the server's 250 and our mark leaves behind: the row pending, the delivery not done.
    await h.system.db.query(`update notifications set status = 'pending', sent_at = null where id = $1`, [row!.id]);
    await h.system.db.query(`delete from processed_messages where consumer = 'notifications' and message_id = $1`, [row!.event_id]);
    await h.system.db.query(`update deliveries set status = 'pending', next_attempt_at = $2 where consumer = 'notifications' and message_id = $1`, [row!.event_id, clock.now()]);
    const before = smtp.accepted.length;
    await h.system.broker.drain();
    await smtp.acceptedCount(before + 1);

    assert.deepEqual(countBy(mine(buyer.email), (m) => m.messageId), { [messageIdHeader(row!.id)]: 2 }, 'a receiver deduplicating by Message-ID keeps one');
    assert.equal(await scalar(h.system, `select count(*) from outbox where topic = 'notification.sent' and payload->>'notificationId' = $1`, [row!.id]), 1);
  });
});
