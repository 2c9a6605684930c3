import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { System } from '../app.ts';
import { isAppError } from '../platform/errors.ts';
import { metricsExposition, metricsTokenCheck, readiness } from './probes.ts';

/**
 * The probes of a process without the API (`flashsale worker`): /health, /ready and /metrics on a
 * port of their own (WORKER_PORT), answered like the API's. Requests are not logged: an
 * orchestrator and Prometheus ask every few seconds.
 */
export async function createOpsServer(system: System): Promise<FastifyInstance> {
  const app = Fastify({ loggerInstance: system.log.child({ component: 'ops' }) as FastifyBaseLogger, return503OnClosing: true });
  const checkToken = metricsTokenCheck(system.config.METRICS_TOKEN);
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    system.metrics.httpRequests.inc({ method: request.method, route, status: String(reply.statusCode) });
    system.metrics.httpDuration.observe({ method: request.method, route }, reply.elapsedTime / 1000);
  });
  const quiet = { logLevel: 'warn' } as const;
  app.get('/health', quiet, async () => ({ status: 'ok' }));
  app.get('/ready', quiet, async (_request, reply) => {
    const { ready, body } = await readiness(system);
    return reply.code(ready ? 200 : 503).send(body);
  });
  app.get('/metrics', quiet, async (request, reply) => {
    try {
      checkToken(request.headers.authorization);
    } catch (error) {
      if (isAppError(error)) return reply.code(401).send({ error: { code: error.code, message: error.message } });
      throw error;
    }
    const { contentType, body } = await metricsExposition(system);
    return reply.type(contentType).send(body);
  });
  await app.ready();
  return app;
}
