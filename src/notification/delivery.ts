import { randomUUID } from 'node:crypto';
import type { TSchema } from '@sinclair/typebox';
import type { Message } from '../platform/broker/broker.ts';
import type { OutgoingEvent } from '../platform/broker/outbox.ts';
import { readPayload } from '../platform/broker/event-contract.ts';
import { OrderCancelled, OrderCreated, OrderExpired, OrderPaid, OrderTopics } from '../order/contracts.ts';
import { PaymentFailed, PaymentRefunded, PaymentTopics } from '../payment/contracts.ts';
import { NotificationTopics, type NotificationChannel, type NotificationKind, type NotificationSent } from './contracts.ts';
import type { NotificationsDeps } from './index.ts';
import { render, renderSms, type TemplateInput } from './templates.ts';
import * as sql from './sql.ts';

/** Which event makes which notification, and the contract its payload is checked against. */
const KIND_OF_TOPIC: Record<string, { kind: NotificationKind; contract: TSchema }> = {
  [OrderTopics.created]: { kind: 'order_placed', contract: OrderCreated },
  [OrderTopics.paid]: { kind: 'payment_received', contract: OrderPaid },
  [OrderTopics.expired]: { kind: 'order_expired', contract: OrderExpired },
  [OrderTopics.cancelled]: { kind: 'order_cancelled', contract: OrderCancelled },
  [PaymentTopics.refunded]: { kind: 'refund_issued', contract: PaymentRefunded },
  [PaymentTopics.failed]: { kind: 'payment_failed', contract: PaymentFailed },
};

/** The topics a buyer hears about: notification's consumer takes these. */
export const NOTIFYING_TOPICS = Object.keys(KIND_OF_TOPIC);

interface PendingRow {
  id: string; event_id: string; user_id: string; kind: NotificationKind; channel: NotificationChannel; recipient: string | null; subject: string; body: string;
}

/** A buyer's notice of an order or payment event, rendered from templates and delivered on every channel they have (`deliver`). */
export async function notifyOf(deps: NotificationsDeps, message: Message): Promise<void> {
  const { log } = deps;
  const made = KIND_OF_TOPIC[message.topic];
  if (!made) {
    log.warn({ topic: message.topic, messageId: message.id }, 'no notification for this topic');
    return;
  }
  const kind = made.kind;
  const payload = readPayload(made.contract, message) as TemplateInput[typeof kind];
  const userId = (payload as { userId?: unknown }).userId;
  if (typeof userId !== 'string' || userId === '') {
    // payment.refunded carries no buyer when the payment was recorded from the provider alone.
    log.warn({ topic: message.topic, messageId: message.id }, 'event names no buyer: nothing to notify');
    return;
  }
  const { subject, text } = render(kind, payload);
  await deliver(deps, { eventId: message.id, userId, kind, subject, text, sms: renderSms(kind, payload) });
}

/** One notice to one user, before its channels are chosen. `sms` is the short text, if the kind goes by SMS. */
export interface Notice {
  eventId: string;
  userId: string;
  kind: NotificationKind;
  subject: string;
  text: string;
  sms?: string;
}

/**
 * Writes a notice's rows (none if they exist), then sends whatever of them is still pending: one
 * in-app entry — written already sent, with its `notification.sent` event, in one transaction —
 * one email when the user has an address, one SMS when the notice has a short text and the user
 * opted in with a phone number. Each channel at most once: the unique (event_id, channel) row,
 * and a row sent only while it is pending; a resend after a crash keeps the row's id as the
 * message id (email Message-ID, SMS key), which the receiving side deduplicates.
 */
export async function deliver(deps: NotificationsDeps, notice: Notice): Promise<void> {
  const { db, clock, emailOf, phoneOf, emit } = deps;
  const { eventId, userId, kind, subject, text } = notice;
  const email = await emailOf(userId);
  const phone = notice.sms !== undefined ? await phoneOf?.(userId) : undefined;
  const inApp = randomUUID();
  const madeInApp = await db.transaction(async (tx) => {
    const now = clock.now();
    // In-app needs nothing outside the database: its row is written sent, with its event, at once.
    const [made] = await tx.query(sql.insertSentNotification, [inApp, eventId, userId, kind, 'in_app', null, subject, text, now]);
    if (made) await emit(tx, [sentEvent({ id: inApp, event_id: eventId, user_id: userId, kind, channel: 'in_app' })]);
    if (email) await tx.query(sql.insertNotification, [randomUUID(), eventId, userId, kind, 'email', email, subject, text, now]);
    if (phone) await tx.query(sql.insertNotification, [randomUUID(), eventId, userId, kind, 'sms', phone, subject, notice.sms, now]);
    return made !== undefined;
  });
  // The email and SMS, and on a redelivery whatever an earlier attempt left pending.
  if (!madeInApp || email || phone) for (const row of await db.query<PendingRow>(sql.pendingOfEvent, [eventId])) await send(deps, row);
}

function sentEvent(row: Pick<PendingRow, 'id' | 'event_id' | 'user_id' | 'kind' | 'channel'>): OutgoingEvent {
  return {
    topic: NotificationTopics.sent,
    payload: { notificationId: row.id, eventId: row.event_id, userId: row.user_id, kind: row.kind, channel: row.channel } satisfies NotificationSent,
    messageId: row.id,
  };
}

/** A throw leaves the row pending for the broker's retry; a row already sent is never sent again. */
async function send({ db, clock, mailer, sms, emit }: NotificationsDeps, row: PendingRow): Promise<void> {
  if (row.channel === 'email') {
    await mailer.send({ to: row.recipient!, subject: row.subject, text: row.body, messageId: row.id });
  }
  if (row.channel === 'sms') {
    if (!sms) throw new Error('an SMS is pending but no SMS sender is configured');
    await sms.send({ to: row.recipient!, text: row.body, messageId: row.id });
  }
  await db.transaction(async (tx) => {
    const [marked] = await tx.query(sql.markSent, [row.id, clock.now()]);
    if (!marked) return;
    await emit(tx, [sentEvent(row)]);
  });
}
