import { Type, type Static } from '@sinclair/typebox';

/** Notification's events. */
export const NotificationTopics = {
  /** A notification reached its channel: the mailer accepted the email, or the in-app entry is visible. */
  sent: 'notification.sent',
  /** To itself: look again whether a sale's summary can be sent (an order of it was still awaiting payment). */
  summaryDue: 'notification.summary_due',
} as const;

/** `attempt`: how many times the summary has already waited. */
export const SummaryDue = Type.Object({ saleId: Type.String(), attempt: Type.Integer({ minimum: 1 }) });
export type SummaryDue = Static<typeof SummaryDue>;

/** Every kind of notice, one per event a buyer hears about (delivery.ts). */
export const NOTIFICATION_KINDS = [
  'order_placed', 'payment_received', 'order_expired', 'order_cancelled', 'refund_issued', 'order_shipped', 'order_fulfilled', 'shipment_delivered',
  'line_cancelled', 'payment_failed', 'item_sold_out', 'sale_ended',
] as const;
export type NotificationKind = (typeof NOTIFICATION_KINDS)[number];
export const NOTIFICATION_CHANNELS = ['in_app', 'email', 'sms'] as const;
export type NotificationChannel = (typeof NOTIFICATION_CHANNELS)[number];

/** `eventId`: the message the notification was made for. */
export const NotificationSent = Type.Object({
  notificationId: Type.String(), eventId: Type.String(), userId: Type.String(),
  kind: Type.Union(NOTIFICATION_KINDS.map((k) => Type.Literal(k))),
  channel: Type.Union(NOTIFICATION_CHANNELS.map((c) => Type.Literal(c))),
});
export type NotificationSent = Static<typeof NotificationSent>;
