import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify';
import type { Logger } from '../platform/logger.ts';
import { PspError } from './errors.ts';

/**
 * On every answer: nothing may frame the hosted page (a framed Pay button can be clickjacked), and
 * nothing is cached (intents carry client secrets). Harmless on the JSON answers.
 */
export const CONTENT_SECURITY_POLICY = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'";
const RESPONSE_HEADERS = {
  'content-security-policy': CONTENT_SECURITY_POLICY,
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  'cache-control': 'no-store',
};

/** Every failure answers as Stripe's error JSON (unknown URLs too), and every answer carries its request id and RESPONSE_HEADERS. */
export function registerResponseShape(app: FastifyInstance, log: Logger): void {
  app.setErrorHandler((error: FastifyError, _request, reply) => {
    const pspError = toPspError(error);
    if (pspError.status >= 500) log.error({ err: error }, 'psp request failed');
    return sendError(reply, pspError);
  });
  app.setNotFoundHandler((request, reply) =>
    sendError(reply, new PspError(404, 'invalid_request_error', `Unrecognized request URL (${request.method}: ${request.url.split('?')[0]}).`)));

  app.addHook('onSend', async (request, reply, payload) => {
    // A route may widen the policy (the hosted page: form-action towards the shop's return URL).
    const { 'content-security-policy': policy, ...others } = RESPONSE_HEADERS;
    reply.header('request-id', request.id).headers(others);
    if (!reply.hasHeader('content-security-policy')) reply.header('content-security-policy', policy);
    return payload;
  });
}

/** A thrown error as the PspError it answers: ours as is, Fastify's (body limit, bad content type…) translated, anything else a bare 500. */
export function toPspError(error: unknown): PspError {
  if (error instanceof PspError) return error;
  const e = error as Partial<FastifyError>;
  const status = typeof e.statusCode === 'number' ? e.statusCode : 500;
  if (status >= 500) return new PspError(500, 'api_error', 'An unknown error occurred on the simulator.');
  if (e.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
    return new PspError(400, 'invalid_request_error', 'Send parameters as application/x-www-form-urlencoded (as Stripe does) or application/json.', 'content_type_invalid');
  }
  return new PspError(status, 'invalid_request_error', e.message ?? 'The request is malformed.');
}

export function sendError(reply: FastifyReply, error: PspError) {
  if (error.status === 401) reply.header('www-authenticate', 'Bearer realm="psp"');
  return reply.code(error.status).type('application/json; charset=utf-8').send(error.toBody());
}
