import type { FastifyInstance } from 'fastify';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { PspStore } from './state.ts';

/**
 * The simulator's /metrics: the same process and HTTP series as flashsale's roles (one RED panel
 * covers every role), its intents by status and its webhook deliveries by outcome.
 */
export function createPspMetrics(store: PspStore) {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'flashsale_' });
  new Gauge({ name: 'flashsale_process_info', help: 'Always 1: which role this process runs', labelNames: ['role'] as const, registers: [registry] }).set({ role: 'psp' }, 1);
  const httpRequests = new Counter({ name: 'flashsale_http_requests_total', help: 'HTTP requests by route and status', labelNames: ['method', 'route', 'status'] as const, registers: [registry] });
  const httpDuration = new Histogram({
    name: 'flashsale_http_request_duration_seconds', help: 'HTTP latency by route', labelNames: ['method', 'route'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5], registers: [registry],
  });
  const webhooks = new Counter({ name: 'flashsale_psp_webhooks_total', help: 'Simulator webhook deliveries finished, by outcome (delivered, failed)', labelNames: ['outcome'] as const, registers: [registry] });
  new Gauge({
    name: 'flashsale_psp_intents', help: "The simulator's payment intents by status", labelNames: ['status'] as const, registers: [registry],
    collect() {
      this.reset();
      const counts = new Map<string, number>();
      for (const intent of store.intents.values()) counts.set(intent.status, (counts.get(intent.status) ?? 0) + 1);
      for (const [status, n] of counts) this.set({ status }, n);
    },
  });
  return {
    registry,
    webhookFinished: (delivered: boolean) => webhooks.inc({ outcome: delivered ? 'delivered' : 'failed' }),
    /** RED per route, and GET /metrics (public, like /health: the simulator holds no secrets worth a token). */
    register(app: FastifyInstance): void {
      app.addHook('onResponse', async (request, reply) => {
        const route = request.routeOptions.url ?? 'unmatched';
        httpRequests.inc({ method: request.method, route, status: String(reply.statusCode) });
        httpDuration.observe({ method: request.method, route }, reply.elapsedTime / 1000);
      });
      app.get('/metrics', async (_request, reply) => reply.type(registry.contentType).send(await registry.metrics()));
    },
  };
}
