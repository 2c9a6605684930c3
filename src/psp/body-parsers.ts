import type { FastifyInstance } from 'fastify';
import { PspError } from './errors.ts';
import { assertNestingWithinLimit, parseForm } from './form.ts';

/**
 * The bodies the simulator reads: Stripe's form encoding (bracket notation) and JSON. Any other
 * content type is refused (see toPspError's content_type_invalid).
 */
export function registerBodyParsers(app: FastifyInstance): void {
  app.removeContentTypeParser(['application/json', 'text/plain']);
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_request, body, done) => {
    let form;
    try {
      form = parseForm(String(body));
    } catch (error) {
      return done(error as Error, undefined); // a PspError 400 for a body beyond the form limits
    }
    done(null, form);
  });
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => {
    const text = String(body);
    if (text.trim() === '') return done(null, {});
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      return done(new PspError(400, 'invalid_request_error', 'Invalid JSON received in the request body.', 'parameter_invalid_json'), undefined);
    }
    try {
      assertNestingWithinLimit(parsed);
    } catch (error) {
      return done(error as Error, undefined); // a PspError 400 for a body nested beyond the form limits
    }
    done(null, parsed);
  });
}
