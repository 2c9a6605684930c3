import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import {
  context, defaultTextMapGetter, defaultTextMapSetter, diag, DiagConsoleLogger, isSpanContextValid, propagation, ROOT_CONTEXT, SpanKind as OtelKind,
  SpanStatusCode, trace, type Context, type Link, type Span as OtelSpan,
} from '@opentelemetry/api';
import { diagLogLevelFromString, W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter as JsonExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as ProtobufExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { defaultResource, detectResources, envDetector, resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, ConsoleSpanExporter, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import type { Attributes, Span, SpanKind, SpanOptions, TraceCarrier, Tracer } from './tracing.ts';

/**
 * The OpenTelemetry implementation of the tracing port, on the official Node SDK: a
 * NodeTracerProvider (AsyncLocalStorage context, W3C trace context propagation), a batch span
 * processor and OTLP over HTTP, each configured by the standard OTEL_* variables, which the SDK
 * reads itself: OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER(_ARG),
 * OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT / HEADERS / TIMEOUT, OTEL_BSP_*. Loaded only when tracing is on.
 */

const KINDS: Record<SpanKind, OtelKind> = {
  internal: OtelKind.INTERNAL, server: OtelKind.SERVER, client: OtelKind.CLIENT, producer: OtelKind.PRODUCER, consumer: OtelKind.CONSUMER,
};

export function startOpenTelemetry({ role, env }: { role: string; env: NodeJS.ProcessEnv }): Tracer {
  const level = env.OTEL_LOG_LEVEL ? diagLogLevelFromString(env.OTEL_LOG_LEVEL) : undefined;
  if (level !== undefined) diag.setLogger(new DiagConsoleLogger(), level);
  const resource = defaultResource()
    .merge(resourceFromAttributes({
      'service.name': `flashsale-${role}`,
      'service.instance.id': `${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`,
      'process.pid': process.pid,
      'flashsale.role': role,
    }))
    // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win over ours.
    .merge(detectResources({ detectors: [envDetector] }));
  const provider = new NodeTracerProvider({ resource, spanProcessors: exportersOf(env).map((exporter) => new BatchSpanProcessor(exporter)) });
  provider.register();
  return new OpenTelemetryTracer(provider);
}

/** OTEL_TRACES_EXPORTER (otlp, console; default otlp) over OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL (http/protobuf, http/json). */
function exportersOf(env: NodeJS.ProcessEnv): SpanExporter[] {
  const names = (env.OTEL_TRACES_EXPORTER ?? 'otlp').split(',').map((n) => n.trim().toLowerCase()).filter(Boolean);
  return names.map((name) => {
    if (name === 'console') return new ConsoleSpanExporter();
    if (name !== 'otlp') throw new Error(`OTEL_TRACES_EXPORTER=${name} is not supported: use otlp, console or none`);
    const protocol = (env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ?? env.OTEL_EXPORTER_OTLP_PROTOCOL ?? 'http/protobuf').trim();
    if (protocol === 'http/protobuf') return new ProtobufExporter();
    if (protocol === 'http/json') return new JsonExporter();
    throw new Error(`OTEL_EXPORTER_OTLP_PROTOCOL=${protocol} is not supported: use http/protobuf or http/json (grpc needs a collector in between)`);
  });
}

const propagator = new W3CTraceContextPropagator();

function extract(carrier: TraceCarrier): Context {
  return propagator.extract(ROOT_CONTEXT, carrier, defaultTextMapGetter);
}

function carrierOf(ctx: Context): TraceCarrier | undefined {
  const out: Record<string, string> = {};
  propagator.inject(ctx, out, defaultTextMapSetter);
  if (!out.traceparent) return undefined;
  return out.tracestate ? { traceparent: out.traceparent, tracestate: out.tracestate } : { traceparent: out.traceparent };
}

function linkOf(carrier: TraceCarrier | undefined): Link | undefined {
  if (!carrier) return undefined;
  const spanContext = trace.getSpanContext(extract(carrier));
  return spanContext && isSpanContextValid(spanContext) ? { context: spanContext } : undefined;
}

function clean(attributes: Attributes | undefined): Record<string, string | number | boolean> | undefined {
  if (!attributes) return undefined;
  const out: Record<string, string | number | boolean> = {};
  for (const [key, value] of Object.entries(attributes)) if (value !== undefined) out[key] = value;
  return out;
}

class SpanHandle implements Span {
  readonly span: OtelSpan;

  constructor(span: OtelSpan) {
    this.span = span;
  }

  setAttributes(attributes: Attributes): void {
    this.span.setAttributes(clean(attributes)!);
  }

  fail(error: unknown): void {
    const err = error instanceof Error ? error : new Error(String(error));
    this.span.recordException(err);
    this.span.setStatus({ code: SpanStatusCode.ERROR, message: err.message });
  }

  carrier(): TraceCarrier | undefined {
    return carrierOf(trace.setSpan(ROOT_CONTEXT, this.span));
  }

  end(): void {
    this.span.end();
  }
}

class OpenTelemetryTracer implements Tracer {
  readonly enabled = true;
  readonly #tracer = trace.getTracer('flashsale');

  private readonly provider: NodeTracerProvider;

  constructor(provider: NodeTracerProvider) {
    this.provider = provider;
  }

  start(name: string, options: SpanOptions = {}): SpanHandle {
    const parent = options.parent === null ? ROOT_CONTEXT : options.parent ? extract(options.parent) : context.active();
    const links = options.links?.map(linkOf).filter((l): l is Link => l !== undefined);
    const span = this.#tracer.startSpan(name, { kind: KINDS[options.kind ?? 'internal'], attributes: clean(options.attributes), links, root: options.parent === null }, parent);
    return new SpanHandle(span);
  }

  run<T>(name: string, options: SpanOptions, fn: (span: Span) => Promise<T>): Promise<T> {
    const span = this.start(name, options);
    return context.with(trace.setSpan(context.active(), span.span), async () => {
      try {
        return await fn(span);
      } catch (error) {
        span.fail(error);
        throw error;
      } finally {
        span.end();
      }
    });
  }

  within<T>(span: Span, fn: () => T): T {
    if (!(span instanceof SpanHandle)) return fn();
    return context.with(trace.setSpan(context.active(), span.span), fn);
  }

  current(): TraceCarrier | undefined {
    return trace.getSpan(context.active()) ? carrierOf(context.active()) : undefined;
  }

  logFields(): { trace_id: string; span_id: string } | undefined {
    const spanContext = trace.getSpan(context.active())?.spanContext();
    if (!spanContext || !isSpanContextValid(spanContext)) return undefined;
    return { trace_id: spanContext.traceId, span_id: spanContext.spanId };
  }

  async shutdown(): Promise<void> {
    try {
      await this.provider.shutdown();
    } finally {
      // Even when the last export failed: else the globals stay registered and a later start registers nothing.
      trace.disable();
      context.disable();
      propagation.disable();
    }
  }
}
