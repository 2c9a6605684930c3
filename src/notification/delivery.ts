import { randomUUID } from 'node:crypto';
import type { TSchema } from '@sinclair/typebox';
import type { Message } from '../platform/broker/broker.ts';
import type { OutgoingEvent } from '../platform/broker/outbox.ts';
import { readPayload } from '../platform/broker/event-contract.ts';
import { OrderCancelled, OrderCreated, OrderExpired, OrderFulfilled, OrderLineCancelled, OrderPaid, OrderTopics } from '../order/contracts.ts';
import { FulfillmentTopics, ShipmentDelivered, ShipmentShipped } from '../fulfillment/contracts.ts';
import { PaymentFailed, PaymentRefunded, PaymentTopics } from '../payment/contracts.ts';
import { NotificationTopics, type NotificationChannel, type NotificationKind, type NotificationSent } from './contracts.ts';
import type { NotificationsDeps } from './index.ts';
import { render, renderSms, type TemplateInput } from './templates.ts';
import { GroupCommitter, type BatchOutcome } from '../platform/group-commit.ts';
import * as sql from './sql.ts';

/** Which event makes which notification, and the contract its payload is checked against. */
const KIND_OF_TOPIC: Record<string, { kind: NotificationKind; contract: TSchema }> = {
  [OrderTopics.created]: { kind: 'order_placed', contract: OrderCreated },
  [OrderTopics.paid]: { kind: 'payment_received', contract: OrderPaid },
  [OrderTopics.expired]: { kind: 'order_expired', contract: OrderExpired },
  [OrderTopics.cancelled]: { kind: 'order_cancelled', contract: OrderCancelled },
  [PaymentTopics.refunded]: { kind: 'refund_issued', contract: PaymentRefunded },
  [FulfillmentTopics.shipped]: { kind: 'order_shipped', contract: ShipmentShipped },
  [OrderTopics.fulfilled]: { kind: 'order_fulfilled', contract: OrderFulfilled },
  [FulfillmentTopics.delivered]: { kind: 'shipment_delivered', contract: ShipmentDelivered },
  [OrderTopics.lineCancelled]: { kind: 'line_cancelled', contract: OrderLineCancelled },
  [PaymentTopics.failed]: { kind: 'payment_failed', contract: PaymentFailed },
};

/** The topics a buyer hears about: notification's consumer takes these. */
export const NOTIFYING_TOPICS = Object.keys(KIND_OF_TOPIC);

interface PendingRow {
  id: string; event_id: string; user_id: string; kind: NotificationKind; channel: NotificationChannel; recipient: string | null; subject: string; body: string;
}

/** A notice to one user, read and rendered: what its rows are made of. `sms` is the short text, if the kind goes by SMS. */
export interface Notice { eventId: string; userId: string; kind: NotificationKind; subject: string; text: string; sms?: string | undefined }

/** What writing a notice's rows found: whether its in-app entry is new, the user's email address and (opted in) phone. */
interface Written { madeInApp: boolean; email: string | undefined; phone: string | undefined }

/** Notification's consumer of buyers' events, and `deliver` for notices made elsewhere (merchant-notices.ts). */
export interface Notifier {
  onMessage(message: Message): Promise<void>;
  deliver(notice: Notice): Promise<void>;
}

/** Notices arriving together share one transaction; a notice waits at most this long for company. */
const GROUP = { maxWaitMs: 2, maxBatch: 500, maxQueue: 20_000 } as const;

/**
 * Notification's consumer. For each event it creates the event's rows (none if they exist), then
 * sends whatever of them is still pending: one in-app entry per event — written already sent, with
 * its `notification.sent` event — one email when the user has an address, and one SMS when the
 * notice's kind goes by SMS and the user opted in with a phone number, rendered from templates. The rows of events handled together are written in one transaction (a flash sale's
 * notices come by the thousand; on PGlite a statement costs the same for one row as for 500).
 * "Never two" rests on the unique (event_id, channel) row and on a row being sent only while it is
 * pending; an email whose acceptance was not recorded (crash) is resent with the same Message-ID,
 * which the receiving server can drop.
 */
export function createNotifier(deps: NotificationsDeps): Notifier {
  const writer = new GroupCommitter<Notice, Written>((notices) => writeRows(deps, notices), GROUP);
  // Emails and texts whose sending ended together are marked sent in one transaction too.
  const marker = new GroupCommitter<PendingRow, boolean>((rows) => markSent(deps, rows), GROUP);
  async function deliver(notice: Notice): Promise<void> {
    const { madeInApp, email, phone } = await writer.submit(notice);
    // The email and the SMS, and on a redelivery whatever an earlier attempt left pending.
    if (!madeInApp || email || phone) for (const row of await deps.db.query<PendingRow>(sql.pendingOfEvent, [notice.eventId])) await send(deps, marker, row);
  }
  return {
    deliver,
    async onMessage(message) {
      const notice = noticeOf(deps, message);
      if (notice) await deliver(notice);
    },
  };
}

/** The notice an event makes, or none (a topic nobody hears about, an event naming no buyer). */
function noticeOf({ log }: NotificationsDeps, message: Message): Notice | undefined {
  const made = KIND_OF_TOPIC[message.topic];
  if (!made) {
    log.warn({ topic: message.topic, messageId: message.id }, 'no notification for this topic');
    return undefined;
  }
  const kind = made.kind;
  const payload = readPayload(made.contract, message) as TemplateInput[typeof kind];
  const userId = (payload as { userId?: unknown }).userId;
  if (typeof userId !== 'string' || userId === '') {
    // payment.refunded carries no buyer when the payment was recorded from the provider alone.
    log.warn({ topic: message.topic, messageId: message.id }, 'event names no buyer: nothing to notify');
    return undefined;
  }
  // An order fulfilled by a shipment leaving: that shipment's own notice says the order is complete.
  if (kind === 'order_fulfilled' && (payload as OrderFulfilled).byShipmentId) return undefined;
  const { subject, text } = render(kind, payload);
  return { eventId: message.id, userId, kind, subject, text, sms: renderSms(kind, payload) };
}

/** One transaction for a batch of notices: the in-app entries born sent with their events, and the pending email rows. */
async function writeRows({ db, clock, emailsOf, phonesOf, emit }: NotificationsDeps, notices: readonly Notice[]): Promise<Array<BatchOutcome<Written>>> {
  const emails = await emailsOf([...new Set(notices.map((n) => n.userId))]);
  const textable = notices.filter((n) => n.sms !== undefined);
  const phones = textable.length > 0 && phonesOf ? await phonesOf([...new Set(textable.map((n) => n.userId))]) : new Map<string, string>();
  const inAppIds = notices.map(() => randomUUID());
  const made = await db.transaction(async (tx) => {
    const now = clock.now();
    const column = <K extends keyof Notice>(key: K) => notices.map((n) => n[key]);
    const rows = await tx.query<{ id: string }>(sql.insertSentNotifications,
      [inAppIds, column('eventId'), column('userId'), column('kind'), column('subject'), now, column('text')]);
    const madeIds = new Set(rows.map((r) => r.id));
    await emit(tx, notices.flatMap((n, i) => (madeIds.has(inAppIds[i]!)
      ? [sentEvent({ id: inAppIds[i]!, event_id: n.eventId, user_id: n.userId, kind: n.kind, channel: 'in_app' })] : [])));
    const mailed = notices.filter((n) => emails.has(n.userId));
    if (mailed.length > 0) {
      await tx.query(sql.insertEmailNotifications, [mailed.map(() => randomUUID()), mailed.map((n) => n.eventId), mailed.map((n) => n.userId),
        mailed.map((n) => n.kind), mailed.map((n) => emails.get(n.userId)!), mailed.map((n) => n.subject), now, mailed.map((n) => n.text)]);
    }
    const texted = textable.filter((n) => phones.has(n.userId));
    if (texted.length > 0) {
      await tx.query(sql.insertSmsNotifications, [texted.map(() => randomUUID()), texted.map((n) => n.eventId), texted.map((n) => n.userId),
        texted.map((n) => n.kind), texted.map((n) => phones.get(n.userId)!), texted.map((n) => n.subject), now, texted.map((n) => n.sms!)]);
    }
    return madeIds;
  });
  return notices.map((n, i) => ({
    ok: true, value: { madeInApp: made.has(inAppIds[i]!), email: emails.get(n.userId), phone: n.sms !== undefined ? phones.get(n.userId) : undefined },
  }));
}

function sentEvent(row: Pick<PendingRow, 'id' | 'event_id' | 'user_id' | 'kind' | 'channel'>): OutgoingEvent {
  return {
    topic: NotificationTopics.sent,
    payload: { notificationId: row.id, eventId: row.event_id, userId: row.user_id, kind: row.kind, channel: row.channel } satisfies NotificationSent,
    messageId: row.id,
  };
}

/** A throw leaves the row pending for the broker's retry; a row already sent is never sent again. */
async function send({ mailer, sms }: NotificationsDeps, marker: GroupCommitter<PendingRow, boolean>, row: PendingRow): Promise<void> {
  if (row.channel === 'email') {
    await mailer.send({ to: row.recipient!, subject: row.subject, text: row.body, messageId: row.id });
  }
  if (row.channel === 'sms') {
    if (!sms) throw new Error('an SMS is pending but no SMS sender is configured');
    await sms.send({ to: row.recipient!, text: row.body, messageId: row.id });
  }
  await marker.submit(row);
}

/** Marks sent rows and writes their `notification.sent` events, in one transaction; a row another delivery marked first gets no second event. */
async function markSent({ db, clock, emit }: NotificationsDeps, rows: readonly PendingRow[]): Promise<Array<BatchOutcome<boolean>>> {
  const marked = await db.transaction(async (tx) => {
    const done = new Set((await tx.query<{ id: string }>(sql.markSent, [rows.map((r) => r.id), clock.now()])).map((r) => r.id));
    await emit(tx, rows.filter((r) => done.has(r.id)).map(sentEvent));
    return done;
  });
  return rows.map((r) => ({ ok: true, value: marked.has(r.id) }));
}
