import type { Clock } from '../platform/clock.ts';
import type { Database } from '../platform/database/index.ts';
import type { Emit } from '../platform/broker/outbox.ts';
import type { Broker } from '../platform/broker/broker.ts';
import type { Logger } from '../platform/logger.ts';
import type { Mailer } from '../platform/mailer.ts';
import type { NotificationChannel, NotificationKind } from './contracts.ts';
import { NOTIFYING_TOPICS, createNotifier } from './delivery.ts';
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

/**
 * Notification: what a buyer hears about their orders and payments, in the app and by email, each
 * at most once (delivery.ts).
 */
export interface Notifications {
  /** Notification's consumer: the order and payment events a buyer hears about. */
  subscribe(broker: Pick<Broker, 'consumeSelfManaged'>): void;
  /** A buyer's notifications, every channel, newest first. */
  listForUser(userId: string, page: { limit: number; offset: number }): Promise<Notification[]>;
}

export interface NotificationsDeps {
  db: Database;
  clock: Clock;
  mailer: Mailer;
  /** The buyer's email address, if there is one: no email is sent otherwise. */
  emailsOf: (userIds: readonly string[]) => Promise<Map<string, string>>;
  log: Logger;
  /** Writes events to the outbox in a transaction (the composition root's one emitter). */
  emit: Emit;
}

interface NotificationRow {
  id: string; event_id: string; kind: NotificationKind; channel: NotificationChannel; recipient: string | null; subject: string; body: string;
  status: 'pending' | 'sent'; created_at: Date; sent_at: Date | null;
}

/** Wires notification's consumer (delivery.ts) and its one read. */
export function createNotifications(deps: NotificationsDeps): Notifications {
  return {
    subscribe(broker) {
      // Many at once: the notifier writes the notices that arrive together in one transaction.
      broker.consumeSelfManaged('notifications', NOTIFYING_TOPICS, createNotifier(deps), { concurrency: 200 });
    },
    async listForUser(userId, page) {
      const rows = await deps.db.query<NotificationRow>(sql.notificationsOfUser, [userId, page.limit, page.offset]);
      return rows.map((r) => ({
        id: r.id, eventId: r.event_id, kind: r.kind, channel: r.channel, recipient: r.recipient, subject: r.subject, body: r.body,
        status: r.status, createdAt: r.created_at, sentAt: r.sent_at,
      }));
    },
  };
}
