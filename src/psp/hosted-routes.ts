import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { crossSitePage, hostedPage, notFoundPage, type PageResult } from './page.ts';
import { recordAndSend, type Simulator } from './simulator.ts';
import { CONTENT_SECURITY_POLICY } from './responses.ts';

const HTML = 'text/html; charset=utf-8';

/** The hosted payment page (public: the buyer has no API key) and its Pay and Decline buttons. */
export function registerHostedPage(app: FastifyInstance, sim: Simulator): void {
  /** Pay and Decline only from the page itself: a form another site posts (CSRF) is refused before its body is read. */
  async function refuseCrossSite(request: FastifyRequest, reply: FastifyReply) {
    if (isCrossSite(request, sim.publicUrl())) return reply.code(403).type(HTML).send(crossSitePage());
  }
  app.get<{ Params: { id: string }; Querystring: { result?: string } }>('/pay/:id', async (request, reply) => {
    const intent = sim.store.intents.get(request.params.id);
    if (!intent) return reply.code(404).type(HTML).send(notFoundPage(request.params.id));
    const result = request.query.result;
    const shown: PageResult = result === 'succeeded' || result === 'declined' || result === 'unchanged' ? result : undefined;
    // Pay and Decline redirect to the return URL, and form-action also governs a form's redirects.
    const back = originOf(intent.next_action?.redirect_to_url.return_url ?? '');
    if (back) reply.header('content-security-policy', CONTENT_SECURITY_POLICY.replace("form-action 'self'", `form-action 'self' ${back}`));
    return reply.type(HTML).send(hostedPage(intent, shown));
  });
  for (const action of ['pay', 'decline'] as const) {
    app.post<{ Params: { id: string } }>(`/pay/:id/${action}`, { onRequest: refuseCrossSite }, async (request, reply) => {
      const id = request.params.id;
      if (!sim.store.intents.has(id)) return reply.code(404).type(HTML).send(notFoundPage(id));
      // Where the merchant asked the buyer to be sent back (`return_url`); paying clears next_action.
      const back = sim.store.intents.get(id)?.next_action?.redirect_to_url.return_url ?? null;
      const { ops, outcome } = sim.core.hostedAction(id, action);
      recordAndSend(sim, ops);
      if (back && outcome !== 'unchanged') return reply.redirect(back, 303);
      return reply.redirect(`/pay/${encodeURIComponent(id)}?result=${outcome}`, 303);
    });
  }
}

/**
 * A browser's cross-site form post: `Sec-Fetch-Site` other than same-origin, or an `Origin` that is
 * neither the public URL's (behind a proxy) nor the one the request reached. No Origin at all is not a
 * browser's form post (curl, the README tour) and passes.
 */
function isCrossSite(request: FastifyRequest, publicUrl: string): boolean {
  const site = request.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin' && site !== 'none') return true;
  const origin = request.headers.origin;
  if (origin === undefined) return false;
  const given = originOf(origin);
  return given === undefined || (given !== originOf(publicUrl) && given !== originOf(`${request.protocol}://${request.host}`));
}

/** `https://Example.test:443/x` → `https://example.test`; undefined for `null` (an opaque origin) or a non-URL. */
function originOf(url: string): string | undefined {
  try {
    const { origin } = new URL(url);
    return origin === 'null' ? undefined : origin;
  } catch {
    return undefined;
  }
}
