/** Notification's events. */
export const NotificationTopics = {
  /** A notification reached its channel: the mailer accepted the email, or the in-app entry is visible. */
  sent: 'notification.sent',
} as const;

export type NotificationKind = 'order_placed' | 'payment_received' | 'order_expired' | 'order_cancelled' | 'refund_issued';
export type NotificationChannel = 'in_app' | 'email';

export interface NotificationSent {
  notificationId: string;
  /** The message the notification was made for. */
  eventId: string;
  userId: string;
  kind: NotificationKind;
  channel: NotificationChannel;
}
