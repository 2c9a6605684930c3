import { createHash, timingSafeEqual } from 'node:crypto';
import type { System } from '../app.ts';
import { AppError } from '../platform/errors.ts';
import { createSampler } from './sampler.ts';

/** What /ready answers: each dependency `ok` or not, in fixed words (the detail goes to the log). */
export async function readiness(system: System): Promise<{ ready: boolean; body: { status: 'ready' | 'not_ready'; checks: Record<string, string> } }> {
  // Fixed words only: /ready is public, and a raw error names hosts, databases and users.
  const failed = (check: string) => (err: unknown) => {
    system.log.warn({ err, check }, 'readiness check failed');
    return false;
  };
  const checks = {
    database: (await system.db.ping().then(() => true, failed('database'))) ? 'ok' : 'down',
    gate: (await system.gate.ready().catch(failed('gate'))) ? 'ok' : 'not loaded',
    broker: (await system.broker.stats().then(() => true, failed('broker'))) ? 'ok' : 'down',
  };
  const ready = Object.values(checks).every((c) => c === 'ok');
  return { ready, body: { status: ready ? 'ready' : 'not_ready', checks } };
}

const samplers = new WeakMap<System, ReturnType<typeof createSampler>>();

/** The Prometheus exposition: the scrape-time gauges sampled first (at most once a second), then every metric. */
export async function metricsExposition(system: System): Promise<{ contentType: string; body: string }> {
  let sampler = samplers.get(system);
  if (!sampler) samplers.set(system, (sampler = createSampler(system)));
  await sampler.sample();
  return { contentType: system.metrics.registry.contentType, body: await system.metrics.registry.metrics() };
}

/**
 * With METRICS_TOKEN set, /metrics wants `Authorization: Bearer <token>`. The comparison is of
 * digests in constant time, so neither the token's length nor a matching prefix shows in the timing.
 */
export function metricsTokenCheck(token: string | undefined): (authorization: string | undefined) => void {
  if (token === undefined) return () => {};
  const digest = (text: string) => createHash('sha256').update(text).digest();
  const expected = digest(token);
  return (header) => {
    const given = header?.startsWith('Bearer ') ? header.slice(7).trim() : undefined;
    if (given === undefined || !timingSafeEqual(digest(given), expected)) throw new AppError('unauthorized', 'A valid metrics token is required (METRICS_TOKEN).');
  };
}
