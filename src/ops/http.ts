import { Type } from '@sinclair/typebox';
import type { App, Guards } from '../platform/http/server.ts';
import { bearer, errors } from '../platform/http/schemas.ts';
import type { System } from '../app.ts';

const AuditBody = Type.Object({
  ok: Type.Boolean(), checkedAt: Type.String(), items: Type.Integer(),
  violations: Type.Array(Type.Object({ check: Type.String(), message: Type.String(), ids: Type.Array(Type.String()) })),
});

/** Liveness, readiness, metrics and the audit. */
export function registerOpsRoutes(app: App, { system, guards }: { system: System; guards: Guards }): void {
  const noLimit = { rateLimit: false } as const;

  app.get('/health', { config: noLimit, schema: { hide: true } }, async () => ({ status: 'ok' }));

  app.get('/ready', { config: noLimit, schema: { hide: true } }, async (_request, reply) => {
    const checks: Record<string, string> = {};
    await system.db.ping().then(() => (checks.database = 'ok'), (e: unknown) => (checks.database = `down: ${String(e)}`));
    checks.gate = (await system.gate.ready().catch(() => false)) ? 'ok' : 'not loaded';
    checks.broker = (await system.broker.stats().then(() => true, () => false)) ? 'ok' : 'down';
    const ready = Object.values(checks).every((c) => c === 'ok');
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not_ready', checks });
  });

  app.get('/metrics', { config: noLimit, schema: { hide: true } }, async (_request, reply) => {
    const stats = await system.broker.stats().catch(() => undefined);
    if (stats) {
      system.metrics.outboxPending.set(stats.outboxPending);
      system.metrics.outboxLag.set(stats.outboxLagSeconds);
      system.metrics.deliveriesPending.set(stats.deliveriesPending);
      system.metrics.deadLetters.set(stats.deadLetters);
    }
    return reply.type(system.metrics.registry.contentType).send(await system.metrics.registry.metrics());
  });

  app.get('/v1/admin/audit', {
    preHandler: guards.auth('admin'),
    schema: {
      operationId: 'audit', tags: ['admin'], summary: 'Check the stock, order and message invariants (admin)', security: bearer,
      querystring: Type.Object({ quiet: Type.Boolean({ default: false, description: 'Also require the gate to equal the database and every message to be delivered (use when no traffic is in flight).' }) }, { additionalProperties: false }),
      response: { 200: AuditBody, 409: AuditBody, ...errors(401, 403) },
    },
  }, async (request, reply) => {
    const report = await system.audit({ quiet: request.query.quiet });
    return reply.code(report.ok ? 200 : 409).send(report);
  });
}
