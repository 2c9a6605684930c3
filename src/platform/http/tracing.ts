import type { FastifyReply, FastifyRequest, RouteHandlerMethod } from 'fastify';
import { withTraceFields } from '../logger.ts';
import { tracer, type Span, type TraceCarrier } from '../tracing/tracing.ts';
import type { App } from './server.ts';

/**
 * The HTTP server span of every request (tracing on only): a child of the caller's `traceparent`
 * header when it sends one, else the root of a new trace. It is made active around the route's
 * handler, so the use case's spans and the events it writes belong to it. No header, body or query
 * string is recorded (tokens and passwords travel there): only the method, the route and the status.
 */
export function registerTracing(app: App): void {
  if (!tracer.enabled) return;
  const spans = new WeakMap<FastifyRequest, Span>();
  app.addHook('onRequest', async (request, reply) => {
    const span = tracer.start(`${request.method} ${request.routeOptions.url ?? 'unmatched'}`, {
      kind: 'server', parent: incoming(request) ?? null,
      attributes: { 'http.request.method': request.method, 'http.route': request.routeOptions.url ?? 'unmatched', 'flashsale.request_id': request.id },
    });
    spans.set(request, span);
    // Fastify logs `request completed` outside the handler's context: the request's logger names the span itself.
    const [, traceId, spanId] = span.carrier()?.traceparent.split('-') ?? [];
    if (traceId && spanId) request.log = reply.log = withTraceFields(request.log, { trace_id: traceId, span_id: spanId });
  });
  app.addHook('onRoute', (route) => {
    const handler = route.handler as (this: unknown, request: FastifyRequest, reply: FastifyReply) => unknown;
    route.handler = function traced(this: unknown, request: FastifyRequest, reply: FastifyReply) {
      const span = spans.get(request);
      return span ? tracer.within(span, () => handler.call(this, request, reply)) : handler.call(this, request, reply);
    } as RouteHandlerMethod;
  });
  app.addHook('onResponse', async (request, reply) => {
    const span = spans.get(request);
    if (!span) return;
    span.setAttributes({ 'http.response.status_code': reply.statusCode });
    if (reply.statusCode >= 500) span.fail(new Error(`HTTP ${reply.statusCode}`));
    span.end();
  });
}

function incoming(request: FastifyRequest): TraceCarrier | undefined {
  const traceparent = request.headers.traceparent;
  if (typeof traceparent !== 'string') return undefined;
  const tracestate = request.headers.tracestate;
  return typeof tracestate === 'string' ? { traceparent, tracestate } : { traceparent };
}
