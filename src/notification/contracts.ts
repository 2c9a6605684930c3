import { Type, type Static } from '@sinclair/typebox';

/** Notification's events. */
export const NotificationTopics = {
  /** A notification reached its channel: the mailer accepted the email, or the in-app entry is visible. */
  sent: 'notification.sent',
} as const;

export type NotificationKind = 'order_placed' | 'payment_received' | 'order_expired' | 'order_cancelled' | 'refund_issued';
export type NotificationChannel = 'in_app' | 'email';

/** `eventId`: the message the notification was made for. */
export const NotificationSent = Type.Object({
  notificationId: Type.String(), eventId: Type.String(), userId: Type.String(),
  kind: Type.Union((['order_placed', 'payment_received', 'order_expired', 'order_cancelled', 'refund_issued'] as const).map((k) => Type.Literal(k))),
  channel: Type.Union([Type.Literal('in_app'), Type.Literal('email')]),
});
export type NotificationSent = Static<typeof NotificationSent>;
