/**
 * The tracing port: what components, the broker and the HTTP edge call to make spans and to carry a
 * trace across a message. It imports nothing from OpenTelemetry: while tracing is off (the default)
 * `tracer` is a no-op and the SDK is never loaded; `startTracing` swaps in the OpenTelemetry
 * implementation (otel.ts, loaded on demand) when the environment asks for it. One tracer per
 * process, like the SDK's own global provider and its AsyncLocalStorage context.
 */

/** A span's W3C trace context, as carried in a message header or a database column. */
export interface TraceCarrier {
  traceparent: string;
  tracestate?: string;
}

export type SpanKind = 'internal' | 'server' | 'client' | 'producer' | 'consumer';
export type Attributes = Record<string, string | number | boolean | undefined>;

export interface SpanOptions {
  kind?: SpanKind;
  attributes?: Attributes;
  /**
   * The remote parent (a carrier read from a message or a row). Absent: the active span is the
   * parent. `null`: a new trace (a root), whatever is active.
   */
  parent?: TraceCarrier | null;
  /** Spans this one is related to without being their child (a batch and the requests it carried). */
  links?: ReadonlyArray<TraceCarrier | undefined>;
}

export interface Span {
  setAttributes(attributes: Attributes): void;
  /** Records the error and marks the span failed. */
  fail(error: unknown): void;
  /** This span's context, to carry (a link target, a message's parent). */
  carrier(): TraceCarrier | undefined;
  end(): void;
}

export interface Tracer {
  readonly enabled: boolean;
  /** Runs `fn` inside a new span, made active for it; the span ends when `fn` settles, failed if it threw. */
  run<T>(name: string, options: SpanOptions, fn: (span: Span) => Promise<T>): Promise<T>;
  /** A span started now, not made active; the caller ends it (see `within`). */
  start(name: string, options?: SpanOptions): Span;
  /** Runs `fn` with `span` active: spans started and carriers taken inside are its children. */
  within<T>(span: Span, fn: () => T): T;
  /** The active span's context, to write beside an event; undefined when none (and always while off). */
  current(): TraceCarrier | undefined;
  /** The active span's ids, for log lines. */
  logFields(): { trace_id: string; span_id: string } | undefined;
  /** Exports what is buffered and stops. */
  shutdown(): Promise<void>;
}

const NOOP_SPAN: Span = {
  setAttributes() {},
  fail() {},
  carrier: () => undefined,
  end() {},
};

export const NOOP_TRACER: Tracer = {
  enabled: false,
  run: (_name, _options, fn) => fn(NOOP_SPAN),
  start: () => NOOP_SPAN,
  within: (_span, fn) => fn(),
  current: () => undefined,
  logFields: () => undefined,
  shutdown: async () => {},
};

let impl: Tracer = NOOP_TRACER;

/** The process's tracer: a no-op until `startTracing` installs OpenTelemetry. */
export const tracer: Tracer = {
  get enabled() { return impl.enabled; },
  run: (name, options, fn) => impl.run(name, options, fn),
  start: (name, options) => impl.start(name, options),
  within: (span, fn) => impl.within(span, fn),
  current: () => impl.current(),
  logFields: () => impl.logFields(),
  shutdown: () => impl.shutdown(),
};

/**
 * Whether this environment asks for traces. Off unless an exporter is named
 * (`OTEL_TRACES_EXPORTER=otlp` or `console`) or an OTLP endpoint is set
 * (`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`); `OTEL_SDK_DISABLED=true`
 * or `OTEL_TRACES_EXPORTER=none` turn it off whatever else is set. (The specification's default
 * exporter is otlp; ours is none, so a process never sends to a collector nobody configured.)
 */
export function tracingWanted(env: NodeJS.ProcessEnv): boolean {
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true') return false;
  const exporter = env.OTEL_TRACES_EXPORTER?.trim().toLowerCase();
  if (exporter === 'none') return false;
  if (exporter) return true;
  return Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim() || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim());
}

export interface TracingOptions {
  /** The process's role (`api`, `worker`, `start`…): the default service name is `flashsale-<role>`. */
  role: string;
  /** The OTEL_* variables (config.ts `otelEnvironment`): the SDK is configured by them alone. */
  env: NodeJS.ProcessEnv;
}

/**
 * Starts OpenTelemetry if the environment asks for it (see `tracingWanted`); otherwise does
 * nothing and loads nothing. Call once, before the system is built (the logger reads it).
 */
export async function startTracing(options: TracingOptions): Promise<Tracer> {
  const env = options.env;
  if (impl.enabled || !tracingWanted(env)) return tracer;
  const { startOpenTelemetry } = await import('./otel.ts');
  impl = startOpenTelemetry({ role: options.role, env });
  return tracer;
}

/**
 * Flushes and stops tracing (a no-op while off); the tracer is a no-op again afterwards. A failed
 * last export is reported on stderr, never thrown: it must not keep a process from shutting down.
 */
export async function stopTracing(): Promise<void> {
  const running = impl;
  impl = NOOP_TRACER;
  await running.shutdown().catch((error: unknown) => process.stderr.write(`flashsale: could not flush the last spans: ${String(error)}\n`));
}
