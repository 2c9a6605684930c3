import { Type } from '@sinclair/typebox';
import type { App, Guards } from '../platform/http/server.ts';
import { bearer, errors, Page, Timestamp, Uuid } from '../platform/http/schemas.ts';
import type { Notifications } from './index.ts';

const NotificationBody = Type.Object({
  id: Uuid,
  eventId: Uuid,
  kind: Type.Union(['order_placed', 'payment_received', 'order_expired', 'order_cancelled', 'refund_issued'].map((k) => Type.Literal(k))),
  channel: Type.Union([Type.Literal('in_app'), Type.Literal('email')]),
  recipient: Type.Union([Type.String(), Type.Null()], { description: 'The email address for `email`; null for `in_app`.' }),
  subject: Type.String(),
  body: Type.String(),
  status: Type.Union([Type.Literal('pending'), Type.Literal('sent')]),
  createdAt: Timestamp,
  sentAt: Type.Union([Timestamp, Type.Null()]),
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
