import type { FastifyInstance } from 'fastify';
import { PspError } from './errors.ts';
import { patchKnobs } from './knobs.ts';
import { sendError } from './responses.ts';
import type { Simulator } from './simulator.ts';
import type { Delivery, EventObject, PspStore } from './state.ts';

/** The simulator's own controls (behind the API key): the knobs, the events it sent with their deliveries, and resend. */
export function registerSimulatorControls(app: FastifyInstance, sim: Simulator): void {
  const { core, store } = sim;
  app.get('/_sim/knobs', async () => sim.knobs);
  app.post('/_sim/knobs', async (request, reply) => {
    const patched = patchKnobs(sim.knobs, request.body ?? {});
    if ('errors' in patched) return sendError(reply, new PspError(400, 'invalid_request_error', `Invalid knobs: ${patched.errors.join('; ')}`, 'parameter_invalid'));
    sim.knobs = patched.knobs;
    sim.log.info({ knobs: sim.knobs }, 'psp knobs changed');
    return sim.knobs;
  });
  app.get<{ Querystring: { payment_intent?: string; type?: string } }>('/_sim/events', async (request) => {
    const { payment_intent: intentId, type } = request.query;
    const data = store.events
      .filter((e) => (!type || e.type === type) && (!intentId || intentIdOf(e) === intentId))
      .map((event) => ({ ...simEvent(store, event), event }));
    return { object: 'list', data };
  });
  app.post<{ Params: { id: string } }>('/_sim/events/:id/resend', async (request) => {
    const ops = core.resend(request.params.id);
    store.record(ops);
    sim.dispatcher.schedule(core.eventById(request.params.id), 1);
    return simEvent(store, core.eventById(request.params.id));
  });
}

/** An event as the controls list it: what it is about and how its deliveries went. */
function simEvent(store: PspStore, event: EventObject) {
  const d = store.deliveries.get(event.id);
  const copies = d?.copies ?? 0;
  return {
    id: event.id, type: event.type, created: event.created, payment_intent: intentIdOf(event), status: deliveryStatus(copies, d),
    copies, delivered: d?.delivered ?? 0, failed: d?.failed ?? 0, attempts: d?.attempts ?? 0,
    last_status: d?.lastStatus ?? null, last_error: d?.lastError ?? null,
  };
}

function deliveryStatus(copies: number, d: Delivery | undefined): 'dropped' | 'failed' | 'delivered' | 'pending' {
  return copies === 0 ? 'dropped' : d && d.delivered + d.failed >= copies ? (d.failed > 0 ? 'failed' : 'delivered') : 'pending';
}

function intentIdOf(event: EventObject): string {
  const object = event.data.object;
  return object.object === 'payment_intent' ? object.id : object.payment_intent;
}
