import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { answerApiCall, type Operation } from './api-call.ts';
import type { Result } from './core.ts';
import { listNewestFirst, whereParam } from './lists.ts';
import type { Simulator } from './simulator.ts';

type ById = { Params: { id: string } };

/** A read: answers the object as it is and changes nothing. */
const found = (body: unknown): Result => ({ status: 200, body, ops: [] });

/** Stripe's API: payment intents, refunds and events, every call through answerApiCall. */
export function registerApiRoutes(app: FastifyInstance, sim: Simulator): void {
  const { core, store } = sim;
  const api = (request: FastifyRequest, reply: FastifyReply, run: Operation) => answerApiCall(sim, request, reply, run);

  app.post('/v1/payment_intents', (request, reply) => api(request, reply, (params, ctx) => core.createIntent(params, ctx)));
  app.get<ById>('/v1/payment_intents/:id', (request, reply) => api(request, reply, () => found(core.intent(request.params.id))));
  app.post<ById>('/v1/payment_intents/:id/confirm', (request, reply) =>
    api(request, reply, (params, ctx) => core.confirm(request.params.id, params, ctx)));
  app.post<ById>('/v1/payment_intents/:id/cancel', (request, reply) =>
    api(request, reply, (params, ctx) => core.cancel(request.params.id, params, ctx)));
  app.post('/v1/refunds', (request, reply) => api(request, reply, (params, ctx) => core.refund(params, ctx)));
  app.get<ById>('/v1/refunds/:id', (request, reply) => api(request, reply, () => found(core.refundById(request.params.id))));
  app.get<ById>('/v1/events/:id', (request, reply) => api(request, reply, () => found(core.eventById(request.params.id))));

  // ---- lists, Stripe-shaped, newest first (one helper: listNewestFirst) ----
  app.get('/v1/payment_intents', (request, reply) => api(request, reply, (params) =>
    found(listNewestFirst('/v1/payment_intents', store.intents.values(), params))));
  app.get('/v1/refunds', (request, reply) => api(request, reply, (params) =>
    found(listNewestFirst('/v1/refunds', store.refunds.values(), params, whereParam(params, 'payment_intent', (r) => r.payment_intent)))));
  app.get('/v1/events', (request, reply) => api(request, reply, (params) =>
    found(listNewestFirst('/v1/events', store.events, params, whereParam(params, 'type', (e) => e.type)))));
  // ---- end of lists ----
}
