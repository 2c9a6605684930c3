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
  app.get('/v1/notifications', {
    preHandler: guards.auth('buyer'),
    schema: {
      operationId: 'listNotifications', tags: ['notifications'], summary: 'Your notifications (in-app and email), newest first', security: bearer,
      querystring: Page,
      response: { 200: Type.Object({ notifications: Type.Array(NotificationBody) }), ...errors(401, 403, 422) },
    },
  }, async (request) => ({ notifications: await notifications.listForUser(request.principal!.userId, request.query as { limit: number; offset: number }) }));

  app.get('/v1/shop/notifications', {
    preHandler: guards.auth('merchant'),
    schema: {
      operationId: 'listShopNotifications', tags: ['notifications'], summary: 'Your shop\'s notices: items sold out, sales ended with their summary (merchant)', security: bearer,
      querystring: Page,
      response: { 200: Type.Object({ notifications: Type.Array(NotificationBody) }), ...errors(401, 403, 422) },
    },
  }, async (request) => ({ notifications: await notifications.listForUser(request.principal!.userId, request.query as { limit: number; offset: number }) }));
}
