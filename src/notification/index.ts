import type { Clock } from '../platform/clock.ts';
import type { Database } from '../platform/database/index.ts';
import type { Emit } from '../platform/broker/outbox.ts';
import type { Broker } from '../platform/broker/broker.ts';
import type { Logger } from '../platform/logger.ts';
import type { Mailer } from '../platform/mailer.ts';
import type { SmsSender } from '../platform/sms/port.ts';
import type { NotificationChannel, NotificationKind } from './contracts.ts';
import { NOTIFYING_TOPICS, createNotifier } from './delivery.ts';
import { MERCHANT_TOPICS, notifyMerchant } from './merchant-notices.ts';
import * as sql from './sql.ts';

export type { NotificationChannel, NotificationKind } from './contracts.ts';

export interface Notification {
  id: string;
  eventId: string;
  kind: NotificationKind;
  channel: NotificationChannel;
  /** The email address for `email`, the phone number for `sms`; null for `in_app`. */
  recipient: string | null;
  subject: string;
  body: string;
  status: 'pending' | 'sent';
  createdAt: Date;
  sentAt: Date | null;
}

/**
 * What a merchant's notices need to know of the other components, as a port notification owns
 * (the composition root satisfies it from catalog, accounts and order).
 */
export interface MerchantDirectory {
  /** The merchant who sells this sale item, and the names a notice shows. */
  saleItem(saleItemId: string): Promise<{ merchantId: string; saleName: string; productName: string } | undefined>;
  /** The merchant of a sale, its names, whether it was cancelled, and when its orders are settled (epoch ms). */
  sale(saleId: string): Promise<{ merchantId: string; saleName: string; currency: string; cancelled: boolean; settledAt: number } | undefined>;
  /** The sale's orders by outcome, units sold and revenue. */
  summary(saleId: string): Promise<{ orders: number; paid: number; expired: number; cancelled: number; pending: number; unitsSold: number; revenue: number }>;
}

/**
 * Notification: what a buyer hears about their orders and payments, and a merchant about their
 * sales — in the app, by email and, for buyers who opted in, by SMS — each at most once per
 * channel (delivery.ts, merchant-notices.ts).
 */
export interface Notifications {
  /** Notification's consumers: the order and payment events a buyer hears about; the stock and sale events a merchant does. */
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
  /** The phone numbers of those users who opted in to SMS, by user id: no SMS is sent to the others. */
  phonesOf?: (userIds: readonly string[]) => Promise<Map<string, string>>;
  /** Sends the SMS notices (required once anyone opted in). */
  sms?: SmsSender;
  /** Who to tell about a sale, and its summary; without it, merchants get no notices. */
  merchants?: MerchantDirectory;
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
      const notifier = createNotifier(deps);
      broker.consumeSelfManaged('notifications', NOTIFYING_TOPICS, notifier.onMessage, { concurrency: 200 });
      broker.consumeSelfManaged('merchant-notices', MERCHANT_TOPICS, (message) => notifyMerchant(deps, notifier.deliver, message));
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
