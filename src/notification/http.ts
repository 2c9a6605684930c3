import { Type } from '@sinclair/typebox';
import type { App, Guards } from '../platform/http/server.ts';
import { bearer, errors, Nullable, Page, StringEnum, Timestamp, Uuid } from '../platform/http/schemas.ts';
import type { Notifications } from './index.ts';
import { NOTIFICATION_CHANNELS, NOTIFICATION_KINDS } from './contracts.ts';

const NotificationBody = Type.Object({
  id: Uuid,
  eventId: Uuid,
  kind: StringEnum(NOTIFICATION_KINDS),
  channel: StringEnum(NOTIFICATION_CHANNELS),
  recipient: Nullable(Type.String(), { description: 'The email address for `email`, the phone number for `sms`; null for `in_app`.' }),
  subject: Type.String(),
  body: Type.String(),
  status: StringEnum(['pending', 'sent']),
  createdAt: Timestamp,
  sentAt: Nullable(Timestamp),
});

export function registerNotificationRoutes(app: App, { notifications, guards }: { notifications: Notifications; guards: Guards }): void {
  // A buyer's and a merchant's notices are the same list of the caller's own rows; only the role differs.
  const listMine = (role: 'buyer' | 'merchant', operationId: string, summary: string) => app.get(role === 'buyer' ? '/v1/notifications' : '/v1/shop/notifications', {
    preHandler: guards.auth(role),
    schema: {
      operationId, tags: ['notifications'], summary, security: bearer,
      querystring: Page,
      response: { 200: Type.Object({ notifications: Type.Array(NotificationBody) }), ...errors(401, 403, 422) },
    },
  }, async (request) => ({ notifications: await notifications.listForUser(request.principal!.userId, request.query as { limit: number; offset: number }) }));
  listMine('buyer', 'listNotifications', 'Your notifications (in-app and email), newest first');
  listMine('merchant', 'listShopNotifications', 'Your shop\'s notices: items sold out, sales ended with their summary (merchant)');
}
