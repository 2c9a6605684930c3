import { Type } from '@sinclair/typebox';
import type { App, Guards } from '../platform/http/server.ts';
import { bearer, errors, Nullable, Text, Uuid } from '../platform/http/schemas.ts';
import type { Accounts } from './index.ts';
import { accountThrottle, type AccountLimits } from './throttle.ts';

const Email = Type.String({ format: 'email', maxLength: 254 });
const Password = Type.String({ minLength: 8, maxLength: 128 });
const UserBody = Type.Object({ id: Uuid, email: Type.String(), role: Type.String() });
const ShopBody = Type.Object({ id: Uuid, ownerId: Uuid, name: Type.String() });
const Credentials = Type.Object({ email: Email, password: Password }, { additionalProperties: false });

/** Register and login are public: they are limited per client address, and login per account too. */
export function registerAccountRoutes(app: App, { accounts, guards, limits }: { accounts: Accounts; guards: Guards; limits: AccountLimits }): void {
  const throttle = accountThrottle(app, limits);

  app.post('/v1/auth/register', {
    preHandler: [throttle.registerPerAddress, guards.idempotency],
    config: { idempotency: 'store' },
    schema: { operationId: 'register', tags: ['accounts'], summary: 'Register a buyer account', body: Credentials, response: { 201: UserBody, ...errors(409, 422, 429) } },
  }, async (request, reply) => reply.code(201).send(await accounts.register(request.body.email, request.body.password)));

  app.post('/v1/auth/login', {
    preHandler: [throttle.loginPerAddress],
    schema: {
      operationId: 'login', tags: ['accounts'], summary: 'Exchange email and password for a bearer token',
      body: Type.Object({ email: Text({ maxLength: 254 }), password: Type.String({ maxLength: 128 }) }, { additionalProperties: false }),
      response: { 200: Type.Object({ token: Type.String(), user: UserBody, shop: Nullable(ShopBody, { description: "A merchant's shop; null for other roles." }) }), ...errors(401, 422, 429) },
    },
  }, async (request) => {
    const session = await throttle.checkingFailures(request, () => accounts.login(request.body.email, request.body.password));
    const shop = session.user.role === 'merchant' ? await accounts.shopOf(session.user.id) : undefined;
    return { ...session, shop: shop ?? null };
  });

  app.post('/v1/admin/merchants', {
    preHandler: [...guards.auth('admin'), guards.idempotency],
    config: { idempotency: 'store' },
    schema: {
      operationId: 'createMerchant', tags: ['accounts'], summary: 'Create a merchant and the shop it owns (admin)', security: [{ bearer: [] }],
      body: Type.Object({ email: Email, password: Password, shopName: Text({ minLength: 1, maxLength: 200 }) }, { additionalProperties: false }),
      response: { 201: Type.Object({ user: UserBody, shop: ShopBody }), ...errors(401, 403, 409, 422) },
    },
  }, async (request, reply) => reply.code(201).send(await accounts.createMerchant(request.body.email, request.body.password, request.body.shopName)));

  app.put('/v1/me/phone', {
    preHandler: [...guards.auth('buyer'), guards.idempotency],
    config: { idempotency: 'store' },
    schema: {
      operationId: 'setMyPhone', tags: ['accounts'], summary: 'Opt in to SMS notices with your phone number', security: bearer,
      description: 'The number must be international (+ and the country code) and valid for its country; it is stored and answered in E.164. '
        + 'Replaces any earlier number. From then on the payment, expiry, cancel and refund notices of your orders also go by SMS.',
      body: Type.Object({ phone: Text({ minLength: 3, maxLength: 40 }) }, { additionalProperties: false }),
      response: { 200: Type.Object({ phone: Type.String({ description: 'E.164' }) }), ...errors(401, 403, 404, 422) },
    },
  }, async (request) => ({ phone: (await accounts.setPhone(request.principal!.userId, request.body.phone))! }));

  app.delete('/v1/me/phone', {
    preHandler: guards.auth('buyer'),
    schema: {
      operationId: 'deleteMyPhone', tags: ['accounts'], summary: 'Opt out of SMS notices: your phone number is deleted', security: bearer,
      response: { 204: Type.Null(), ...errors(401, 403, 404) },
    },
  }, async (request, reply) => {
    await accounts.setPhone(request.principal!.userId, null);
    return reply.code(204).send(null);
  });
}
