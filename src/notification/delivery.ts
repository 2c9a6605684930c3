import { randomUUID } from 'node:crypto';
import type { TSchema } from '@sinclair/typebox';
import type { Message } from '../platform/broker/broker.ts';
import type { OutgoingEvent } from '../platform/broker/outbox.ts';
import { readPayload } from '../platform/broker/event-contract.ts';
import { OrderCancelled, OrderCreated, OrderExpired, OrderLineCancelled, OrderPaid, OrderTopics } from '../order/contracts.ts';
import { FulfillmentTopics, ShipmentDelivered, ShipmentShipped } from '../fulfillment/contracts.ts';
import { PaymentRefunded, PaymentTopics } from '../payment/contracts.ts';
import { NotificationTopics, type NotificationChannel, type NotificationKind, type NotificationSent } from './contracts.ts';
import type { NotificationsDeps } from './index.ts';
import { render, type TemplateInput } from './templates.ts';
import * as sql from './sql.ts';

/** Which event makes which notification, and the contract its payload is checked against. */
const KIND_OF_TOPIC: Record<string, { kind: NotificationKind; contract: TSchema }> = {
  [OrderTopics.created]: { kind: 'order_placed', contract: OrderCreated },
  [OrderTopics.paid]: { kind: 'payment_received', contract: OrderPaid },
  [OrderTopics.expired]: { kind: 'order_expired', contract: OrderExpired },
  [OrderTopics.cancelled]: { kind: 'order_cancelled', contract: OrderCancelled },
  [PaymentTopics.refunded]: { kind: 'refund_issued', contract: PaymentRefunded },
  [FulfillmentTopics.shipped]: { kind: 'order_shipped', contract: ShipmentShipped },
  [FulfillmentTopics.delivered]: { kind: 'shipment_delivered', contract: ShipmentDelivered },
  [OrderTopics.lineCancelled]: { kind: 'line_cancelled', contract: OrderLineCancelled },
};

/** The topics a buyer hears about: notification's consumer takes these. */
export const NOTIFYING_TOPICS = Object.keys(KIND_OF_TOPIC);

interface PendingRow {
  id: string; event_id: string; user_id: string; kind: NotificationKind; channel: NotificationChannel; recipient: string | null; subject: string; body: string;
}

/**
 * Creates this event's rows (none if they exist), then sends whatever of them is still pending: one
 * in-app entry per event — written already sent, with its `notification.sent` event, in one
 * transaction — and one email when the buyer has an address, rendered from templates.
 * "Never two" rests on the unique (event_id, channel) row and on a row being sent only while it is
 * pending; an email whose acceptance was not recorded (crash) is resent with the same Message-ID,
 * which the receiving server can drop.
 */
export async function notifyOf(deps: NotificationsDeps, message: Message): Promise<void> {
  const { db, clock, emailOf, log, emit } = deps;
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
  const email = await emailOf(userId);
  const inApp = randomUUID();
  const madeInApp = await db.transaction(async (tx) => {
    const now = clock.now();
    // In-app needs nothing outside the database: its row is written sent, with its event, at once.
    const [made] = await tx.query(sql.insertSentNotification, [inApp, message.id, userId, kind, 'in_app', null, subject, text, now]);
    if (made) await emit(tx, [sentEvent({ id: inApp, event_id: message.id, user_id: userId, kind, channel: 'in_app' })]);
    if (email) await tx.query(sql.insertNotification, [randomUUID(), message.id, userId, kind, 'email', email, subject, text, now]);
    return made !== undefined;
  });
  // The email, and on a redelivery whatever an earlier attempt left pending.
  if (!madeInApp || email) for (const row of await db.query<PendingRow>(sql.pendingOfEvent, [message.id])) await send(deps, row);
}

function sentEvent(row: Pick<PendingRow, 'id' | 'event_id' | 'user_id' | 'kind' | 'channel'>): OutgoingEvent {
  return {
    topic: NotificationTopics.sent,
    payload: { notificationId: row.id, eventId: row.event_id, userId: row.user_id, kind: row.kind, channel: row.channel } satisfies NotificationSent,
    messageId: row.id,
  };
}

/** A throw leaves the row pending for the broker's retry; a row already sent is never sent again. */
async function send({ db, clock, mailer, emit }: NotificationsDeps, row: PendingRow): Promise<void> {
  if (row.channel === 'email') {
    await mailer.send({ to: row.recipient!, subject: row.subject, text: row.body, messageId: row.id });
  }
  await db.transaction(async (tx) => {
    const [marked] = await tx.query(sql.markSent, [row.id, clock.now()]);
    if (!marked) return;
    await emit(tx, [sentEvent(row)]);
  });
}
