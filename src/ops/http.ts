import { Type } from '@sinclair/typebox';
import type { FastifyReply } from 'fastify';
import type { App, Guards, Hook } from '../platform/http/server.ts';
import { bearer, errors, Nullable, StringEnum, Uuid } from '../platform/http/schemas.ts';
import { AppError } from '../platform/errors.ts';
import type { System } from '../app.ts';
import { metricsExposition, metricsTokenCheck, readiness } from './probes.ts';
import type { SaleAttempts } from './sale-attempts.ts';

const Violation = Type.Object({ check: Type.String(), message: Type.String(), ids: Type.Array(Type.String()) });

const ReconciliationBody = Type.Object({
  ok: Type.Boolean(), checkedAt: Type.String(),
  intents: Type.Integer({ description: "The provider's intents that name an order." }), captures: Type.Integer(), refunds: Type.Integer(),
  totals: Type.Record(Type.String(), Type.Object({ received: Type.Integer(), refunded: Type.Integer(), paidOrders: Type.Integer() }), { description: 'Per currency, minor units: received − refunded must equal paidOrders.' }),
  unsettled: Type.Integer({ description: 'Differences in-flight work explains (a webhook not yet applied); always 0 with quiet=true, where each is a mismatch.' }),
  mismatches: Type.Array(Violation),
}, { description: 'The database reconciled with the payment provider (its intents, captures and refunds).' });

const Quiet = Type.Object({ quiet: Type.Boolean({ default: false, description: 'No traffic is in flight: every difference counts (the gate must equal the database, every message be delivered, every capture be applied or refunded).' }) }, { additionalProperties: false });

const AuditBody = Type.Object({
  ok: Type.Boolean(), checkedAt: Type.String(), items: Type.Integer(),
  oversoldUnits: Type.Integer({ description: 'Units held or sold beyond the initial stock, over all items (the benchmark reads it).' }),
  stock: Type.Object({ initial: Type.Integer(), available: Type.Integer(), held: Type.Integer(), sold: Type.Integer(), writtenOff: Type.Integer() }, { description: 'Units over every sale item, by state.' }),
  money: Type.Object({
    reconciliation: ReconciliationBody,
    rejectedCaptures: Type.Record(Type.String(), Type.Object({ refunded: Type.Integer(), refundPending: Type.Integer(), notCaptured: Type.Integer() }), { description: 'Captures that paid nothing (wrong amount or currency, unknown order, second intent), by reason: each is refunded in full.' }),
  }),
  violations: Type.Array(Violation),
});

/** Liveness, readiness, metrics, dead letters, the audit and the reconciliation. */
export function registerOpsRoutes(app: App, deps: { system: System; guards: Guards; attempts: SaleAttempts }): void {
  registerProbes(app, deps.system);
  registerDeadLetterRoutes(app, deps);
  registerAuditRoutes(app, deps);
  registerStatsRoute(app, deps);
  app.addHook('onClose', async () => deps.attempts.close());
}

const Units = Type.Object({ initial: Type.Integer(), available: Type.Integer(), held: Type.Integer(), sold: Type.Integer(), writtenOff: Type.Integer() });
const StatsBody = Type.Object({
  at: Type.Unsafe<Date>({ type: 'string', format: 'date-time' }),
  attempts: Type.Record(Type.String(), Type.Integer(), { description: "Purchase attempts (orders and cart holds) by outcome, `accepted` or the refusal's error code: of the sale over every API process (`attemptsScope` `all-processes`: counted in Redis, at most a second behind for the other processes), or, without saleId or without Redis, those this process answered since it started (`this-process`). A client turns two readings into rates." }),
  attemptsScope: StringEnum(['all-processes', 'this-process']),
  stock: Units,
  allStock: Units,
  holds: Type.Array(Type.Object({ status: Type.String(), holds: Type.Integer(), units: Type.Integer() })),
  orders: Type.Array(Type.Object({ status: Type.String(), orders: Type.Integer() })),
  broker: Type.Object({ outboxPending: Type.Integer(), outboxLagSeconds: Type.Number(), deliveriesPending: Type.Integer(), deadLetters: Type.Integer() }),
  queues: Type.Array(Type.Object({
    consumer: Type.String(), work: Type.Integer({ description: 'Messages ready for its handlers.' }), dead: Type.Integer({ description: 'Dead-lettered messages not yet recorded as dead letters (RabbitMQ) or dead deliveries (in-process).' }),
  }), { description: "Every consumer group's queue, whichever process consumes it (RabbitMQ asked queue by queue)." }),
}, { description: 'What the operations dashboard shows: cheap counts, one sale or all.' });

/**
 * `GET /v1/admin/stats`: the operations dashboard's numbers. Each is one aggregate over indexed
 * rows, or this process's counters: cheap enough to ask every second while a sale runs.
 */
function registerStatsRoute(app: App, { system, guards, attempts: perSale }: { system: System; guards: Guards; attempts: SaleAttempts }): void {
  const units = (row: Record<string, unknown> | undefined) => ({
    initial: Number(row?.initial ?? 0), available: Number(row?.available ?? 0), held: Number(row?.held ?? 0),
    sold: Number(row?.sold ?? 0), writtenOff: Number(row?.written_off ?? 0),
  });
  const STOCK = 'select coalesce(sum(initial), 0) as initial, coalesce(sum(available), 0) as available, coalesce(sum(held), 0) as held, coalesce(sum(sold), 0) as sold, coalesce(sum(written_off), 0) as written_off from stock_items';
  app.get('/v1/admin/stats', {
    preHandler: guards.auth('admin'),
    schema: {
      operationId: 'adminStats', tags: ['admin'], summary: 'Attempts by outcome, stock by state, holds and orders by status, message backlog (admin)', security: bearer,
      querystring: Type.Object({ saleId: Type.Optional(Uuid) }, { additionalProperties: false }),
      response: { 200: StatsBody, ...errors(401, 403, 422) },
    },
  }, async (request) => {
    const saleId = request.query.saleId?.toLowerCase();
    const bySale = saleId ? ' where sale_id = $1' : '';
    const params = saleId ? [saleId] : [];
    const [stock, allStock, holds, orders, broker, queues, attempts] = await Promise.all([
      system.db.query<Record<string, unknown>>(STOCK + bySale, params),
      system.db.query<Record<string, unknown>>(STOCK),
      system.db.query<{ status: string; holds: number; units: number }>(
        `select status, count(*)::int as holds, coalesce(sum(quantity), 0)::int as units from holds${saleId ? ' where sale_item_id in (select sale_item_id from stock_items where sale_id = $1)' : ''} group by status order by status`, params),
      system.db.query<{ status: string; orders: number }>(`select status, count(*)::int as orders from orders${bySale} group by status order by status`, params),
      system.broker.stats(),
      system.broker.queueDepths(),
      system.metrics.purchaseAttempts.get(),
    ]);
    const { attempts: byOutcome, scope } = saleId ? await perSale.of(saleId) : { attempts: {} as Record<string, number>, scope: 'this-process' as const };
    if (!saleId) {
      for (const value of attempts.values) {
        const outcome = String(value.labels.outcome ?? 'unknown');
        byOutcome[outcome] = (byOutcome[outcome] ?? 0) + value.value;
      }
    }
    return {
      at: system.clock.now(), attempts: byOutcome, attemptsScope: scope, stock: units(stock[0]), allStock: units(allStock[0]),
      holds: holds.map((r) => ({ status: r.status, holds: Number(r.holds), units: Number(r.units) })),
      orders: orders.map((r) => ({ status: r.status, orders: Number(r.orders) })),
      broker, queues,
    };
  });
}

/** What an orchestrator and Prometheus ask: unauthenticated (except /metrics with METRICS_TOKEN) and never rate limited. */
function registerProbes(app: App, system: System): void {
  const noLimit = { rateLimit: false } as const;
  app.get('/health', { config: noLimit, schema: { hide: true } }, async () => ({ status: 'ok' }));
  app.get('/ready', { config: noLimit, schema: { hide: true } }, async (_request, reply) => {
    const { ready, body } = await readiness(system);
    return reply.code(ready ? 200 : 503).send(body);
  });
  const checkToken = metricsTokenCheck(system.config.METRICS_TOKEN);
  const tokenHook: Hook = async (request) => checkToken(request.headers.authorization);
  app.get('/metrics', { config: noLimit, schema: { hide: true }, preHandler: tokenHook }, async (_request, reply) => {
    const { contentType, body } = await metricsExposition(system);
    return reply.type(contentType).send(body);
  });
}

function registerDeadLetterRoutes(app: App, { system, guards }: { system: System; guards: Guards }): void {
  const DeadLetterBody = Type.Object({
    consumer: Type.String(), messageId: Type.String(), topic: Type.String(), payload: Type.Unknown(),
    attempts: Type.Integer(), lastError: Nullable(Type.String()), deadAt: Type.Unsafe<Date>({ type: 'string', format: 'date-time' }),
  });
  const LetterParams = Type.Object({ consumer: Type.String({ pattern: '^[a-z0-9-]{1,64}$' }), messageId: Uuid });

  app.get('/v1/admin/dead-letters', {
    preHandler: guards.auth('admin'),
    schema: {
      operationId: 'listDeadLetters', tags: ['admin'], summary: 'Messages that failed every attempt (admin)', security: bearer,
      querystring: Type.Object({ limit: Type.Integer({ minimum: 1, maximum: 500, default: 50 }) }, { additionalProperties: false }),
      response: { 200: Type.Object({ deadLetters: Type.Array(DeadLetterBody) }), ...errors(401, 403, 422) },
    },
  }, async (request) => ({ deadLetters: await system.broker.listDeadLetters(request.query.limit) }));

  app.get('/v1/admin/dead-letters/:consumer/:messageId', {
    preHandler: guards.auth('admin'),
    schema: {
      operationId: 'getDeadLetter', tags: ['admin'], summary: 'One dead-lettered message with its payload and last error (admin)', security: bearer,
      params: LetterParams, response: { 200: DeadLetterBody, ...errors(401, 403, 404, 422) },
    },
  }, async (request) => {
    const letter = await system.broker.getDeadLetter(request.params.consumer, request.params.messageId);
    if (!letter) throw new AppError('not_found', 'No such dead letter.');
    return letter;
  });

  app.post('/v1/admin/dead-letters/:consumer/:messageId/replay', {
    preHandler: guards.auth('admin'),
    schema: {
      operationId: 'replayDeadLetter', tags: ['admin'], summary: 'Put a dead letter back in its queue for another round of attempts (admin)', security: bearer,
      params: LetterParams, response: { 202: Type.Object({ replayed: Type.Boolean() }), ...errors(401, 403, 404, 422) },
    },
  }, async (request, reply) => {
    if (!(await system.broker.replayDeadLetter(request.params.consumer, request.params.messageId))) throw new AppError('not_found', 'No such dead letter.');
    return reply.code(202).send({ replayed: true });
  });
}

function registerAuditRoutes(app: App, { system, guards }: { system: System; guards: Guards }): void {
  app.get('/v1/admin/audit', {
    preHandler: guards.auth('admin'),
    schema: {
      operationId: 'audit', tags: ['admin'], summary: 'Check the stock, order, money and message invariants, and reconcile with the payment provider (admin)', security: bearer,
      querystring: Quiet,
      response: { 200: AuditBody, 409: AuditBody, ...errors(401, 403) },
    },
  }, async (request, reply) => sendReport(reply, await system.audit({ quiet: request.query.quiet })));

  app.get('/v1/admin/reconciliation', {
    preHandler: guards.auth('admin'),
    schema: {
      operationId: 'reconcile', tags: ['admin'], summary: "Reconcile the database with the payment provider's intents, captures and refunds (admin); 409 on a mismatch", security: bearer,
      querystring: Quiet,
      response: { 200: ReconciliationBody, 409: ReconciliationBody, ...errors(401, 403) },
    },
  }, async (request, reply) => sendReport(reply, await system.reconcile({ quiet: request.query.quiet })));
}

/** A check's report: 200 when everything holds, 409 (the same report) when something does not. */
function sendReport<T extends { ok: boolean }>(reply: FastifyReply, report: T) {
  return reply.code(report.ok ? 200 : 409).send(report);
}
