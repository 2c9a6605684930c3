import { randomUUID } from 'node:crypto';
import type { Clock } from '../platform/clock.ts';
import type { Database } from '../platform/database/index.ts';
import type { Emit } from '../platform/broker/outbox.ts';
import type { Broker, Message } from '../platform/broker/broker.ts';
import type { Logger } from '../platform/logger.ts';
import type { Mailer } from '../platform/mailer.ts';
import type { TSchema } from '@sinclair/typebox';
import { readPayload } from '../platform/broker/event-contract.ts';
import { OrderCancelled, OrderCreated, OrderExpired, OrderPaid, OrderTopics } from '../order/contracts.ts';
import { PaymentRefunded, PaymentTopics } from '../payment/contracts.ts';
import { NotificationTopics, type NotificationChannel, type NotificationKind, type NotificationSent } from './contracts.ts';
import { render, type TemplateInput } from './templates.ts';
import * as sql from './sql.ts';

export type { NotificationChannel, NotificationKind } from './contracts.ts';

export interface Notification {
  id: string;
  eventId: string;
  kind: NotificationKind;
  channel: NotificationChannel;
  /** The email address for `email`; null for `in_app`. */
  recipient: string | null;
  subject: string;
  body: string;
  status: 'pending' | 'sent';
  createdAt: Date;
  sentAt: Date | null;
}

export interface NotificationsDeps {
  db: Database;
  clock: Clock;
  mailer: Mailer;
  /** The buyer's email address, if there is one: no email is sent otherwise. */
  emailOf: (userId: string) => Promise<string | undefined>;
  log: Logger;
  /** Writes events to the outbox in a transaction (the composition root's one emitter). */
  emit: Emit;
}

/** Which event makes which notification, and the contract its payload is checked against. */
const KIND_OF_TOPIC: Record<string, { kind: NotificationKind; contract: TSchema }> = {
  [OrderTopics.created]: { kind: 'order_placed', contract: OrderCreated },
  [OrderTopics.paid]: { kind: 'payment_received', contract: OrderPaid },
  [OrderTopics.expired]: { kind: 'order_expired', contract: OrderExpired },
  [OrderTopics.cancelled]: { kind: 'order_cancelled', contract: OrderCancelled },
  [PaymentTopics.refunded]: { kind: 'refund_issued', contract: PaymentRefunded },
};

interface PendingRow {
  id: string; event_id: string; user_id: string; kind: NotificationKind; channel: NotificationChannel; recipient: string | null; subject: string; body: string;
}

interface NotificationRow {
  id: string; event_id: string; kind: NotificationKind; channel: NotificationChannel; recipient: string | null; subject: string; body: string;
  status: 'pending' | 'sent'; created_at: Date; sent_at: Date | null;
}

/**
 * Notification: one in-app entry per event, and one email when the buyer has an address, rendered
 * from templates. "Never two" rests on the unique (event_id, channel) row and on a row being sent
 * only while it is pending; an email whose acceptance was not recorded (crash) is resent with the
 * same Message-ID, which the receiving server can drop.
 */
export function createNotifications({ db, clock, mailer, emailOf, log, emit }: NotificationsDeps) {
  /** Creates this event's rows (none if they exist), then sends whatever of them is still pending. */
  async function handle(message: Message): Promise<void> {
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
    await db.transaction(async (tx) => {
      const now = clock.now();
      await tx.query(sql.insertNotification, [randomUUID(), message.id, userId, kind, 'in_app', null, subject, text, now]);
      if (email) await tx.query(sql.insertNotification, [randomUUID(), message.id, userId, kind, 'email', email, subject, text, now]);
    });
    for (const row of await db.query<PendingRow>(sql.pendingOfEvent, [message.id])) await send(row);
  }

  /** A throw leaves the row pending for the broker's retry; a row already sent is never sent again. */
  async function send(row: PendingRow): Promise<void> {
    if (row.channel === 'email') {
      await mailer.send({ to: row.recipient!, subject: row.subject, text: row.body, messageId: row.id });
    }
    await db.transaction(async (tx) => {
      const [marked] = await tx.query(sql.markSent, [row.id, clock.now()]);
      if (!marked) return;
      await emit(tx, [{
        topic: NotificationTopics.sent,
        payload: { notificationId: row.id, eventId: row.event_id, userId: row.user_id, kind: row.kind, channel: row.channel } satisfies NotificationSent,
        messageId: row.id,
      }]);
    });
  }

  return {
    /** Notification's consumer: the order and payment events a buyer hears about. */
    subscribe(broker: Pick<Broker, 'consumeSelfManaged'>): void {
      broker.consumeSelfManaged('notifications', Object.keys(KIND_OF_TOPIC), handle);
    },

    /** A buyer's notifications, every channel, newest first. */
    async listForUser(userId: string, page: { limit: number; offset: number }): Promise<Notification[]> {
      const rows = await db.query<NotificationRow>(sql.notificationsOfUser, [userId, page.limit, page.offset]);
      return rows.map((r) => ({
        id: r.id, eventId: r.event_id, kind: r.kind, channel: r.channel, recipient: r.recipient, subject: r.subject, body: r.body,
        status: r.status, createdAt: r.created_at, sentAt: r.sent_at,
      }));
    },
  };
}

export type Notifications = ReturnType<typeof createNotifications>;
