import { Type } from '@sinclair/typebox';
import type { App, Guards } from '../platform/http/server.ts';
import { bearer, errors, Nullable, Page, StringEnum, Timestamp, Uuid } from '../platform/http/schemas.ts';
import type { Notifications } from './index.ts';
import { NOTIFICATION_KINDS } from './contracts.ts';

const NotificationBody = Type.Object({
  id: Uuid,
  eventId: Uuid,
  kind: StringEnum(NOTIFICATION_KINDS),
  channel: StringEnum(['in_app', 'email']),
  recipient: Nullable(Type.String(), { description: 'The email address for `email`; null for `in_app`.' }),
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
}
