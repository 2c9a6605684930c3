import { Type, type Static } from '@sinclair/typebox';

/** Notification's events. */
export const NotificationTopics = {
  /** A notification reached its channel: the mailer accepted the email, or the in-app entry is visible. */
  sent: 'notification.sent',
} as const;

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
