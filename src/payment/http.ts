import { Type } from '@sinclair/typebox';
import type { App, Guards } from '../platform/http/server.ts';
import { bearer, Currency, errors, IdParams, Money, Nullable, StringEnum, Uuid } from '../platform/http/schemas.ts';
import { AppError } from '../platform/errors.ts';
import type { Payments } from './index.ts';

const PaymentBody = Type.Object({
  id: Uuid, orderId: Uuid, providerPaymentId: Type.String(), amount: Money, currency: Currency,
  status: StringEnum(['pending', 'succeeded', 'failed', 'canceled']),
  lastError: Nullable(Type.String()),
  hostedUrl: Type.String({ description: "The provider's hosted page where the buyer pays." }),
});

/**
 * A return URL the hosted page may send the buyer to: http(s), on one of the web origins. Anything
 * else would make the provider's page an open redirect that phishing could borrow.
 */
function checkReturnUrl(value: string, origins: readonly string[]): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new AppError('validation_failed', 'returnUrl is not a URL.');
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || !origins.includes(url.origin)) {
    throw new AppError('validation_failed', 'returnUrl must be on one of the web origins (WEB_ORIGINS).');
  }
  return url.toString();
}

/** `http://Localhost:3000/` → `http://localhost:3000`; entries that are no URL are dropped. */
export function webOrigins(list: string): string[] {
  return list.split(',').map((entry) => entry.trim()).filter(Boolean).flatMap((entry) => {
    try {
      return [new URL(entry).origin];
    } catch {
      return [];
    }
  });
}

export async function registerPaymentRoutes(app: App, { payments, guards, returnOrigins }: { payments: Payments; guards: Guards; returnOrigins: readonly string[] }): Promise<void> {
  app.post('/v1/orders/:id/payment', {
    // The body is optional: none is `{}`.
    preValidation: async (request) => {
      if (request.body === undefined || request.body === null) request.body = {};
    },
    preHandler: [...guards.auth('buyer'), guards.idempotency],
    config: { idempotency: 'store' },
    schema: {
      operationId: 'payOrder', tags: ['payments'], summary: 'Start paying for a pending order: returns the hosted payment page', security: bearer,
      description: 'One provider payment per order: calling it again returns the same payment. 409 `payment_window_closed` once the deadline passed. `returnUrl` (optional, on one of WEB_ORIGINS): where the hosted page sends the buyer after paying or declining.',
      params: IdParams,
      body: Type.Object({ returnUrl: Type.Optional(Type.String({ minLength: 1, maxLength: 500 })) }, { additionalProperties: false }),
      response: { 201: PaymentBody, ...errors(401, 403, 404, 409, 422, 503) },
    },
  }, async (request, reply) => {
    const returnUrl = request.body.returnUrl;
    const opts = returnUrl === undefined ? {} : { returnUrl: checkReturnUrl(returnUrl, returnOrigins) };
    return reply.code(201).send(await payments.payOrder(request.principal!.userId, request.params.id, opts));
  });

  // The provider signs the raw bytes: this route keeps the body as a string (its own plugin scope).
  await app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'string', bodyLimit: 256 * 1024 }, (_request, body, done) => done(null, body));
    scope.post('/v1/payments/webhook', {
      config: { rateLimit: false },
      schema: {
        operationId: 'paymentWebhook', tags: ['payments'], summary: 'Payment provider webhook (signed, `Stripe-Signature: t=…,v1=…`)',
        description: 'Verified by HMAC-SHA256 over `timestamp.rawBody` within a tolerance window; each event id is applied once. 400 `invalid_signature` for forged, stale or replayed-out-of-window calls.',
        body: Type.String({ description: 'The raw JSON event, exactly as signed.' }),
        response: { 200: Type.Object({ received: Type.Boolean(), duplicate: Type.Boolean() }), ...errors(400, 422) },
      },
    }, async (request) => {
      const signature = request.headers['stripe-signature'];
      const raw = typeof request.body === 'string' ? request.body : '';
      const result = await payments.handleWebhook(raw, typeof signature === 'string' ? signature : undefined);
      return { received: true, duplicate: result.duplicate };
    });
  });
}
