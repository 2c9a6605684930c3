import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { PspError } from './errors.ts';

/** Authentication on the API and the simulator controls; /health, /metrics and the hosted page are public. */
export function registerApiKeyCheck(app: FastifyInstance, apiKey: string): void {
  const keyDigest = sha256(apiKey);
  app.addHook('onRequest', async (request) => {
    // The matched route pattern, not the raw URL: an encoded or odd spelling of a path cannot slip past.
    const route = request.routeOptions.url;
    if (route === undefined || route === '/health' || route === '/metrics' || route.startsWith('/pay/')) return; // unmatched: the 404 handler answers
    const given = bearerKey(request.headers.authorization);
    if (given === undefined) {
      throw new PspError(401, 'invalid_request_error', 'You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth (e.g. \'Authorization: Bearer YOUR_SECRET_KEY\').');
    }
    if (!timingSafeEqual(sha256(given), keyDigest)) {
      throw new PspError(401, 'invalid_request_error', `Invalid API Key provided: ${redact(given)}`, 'api_key_invalid');
    }
  });
}

function bearerKey(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const [scheme, value] = header.split(' ', 2) as [string, string | undefined];
  if (!value) return undefined;
  if (scheme.toLowerCase() === 'bearer') return value.trim();
  // `curl -u sk_test_…:` sends the key as the Basic user name, as Stripe accepts.
  if (scheme.toLowerCase() === 'basic') return Buffer.from(value, 'base64').toString('utf8').split(':')[0];
  return undefined;
}

function redact(key: string): string {
  return key.length <= 8 ? '*'.repeat(key.length) : `${key.slice(0, 3)}${'*'.repeat(Math.min(20, key.length - 7))}${key.slice(-4)}`;
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}
