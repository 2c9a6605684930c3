import { pino, stdSerializers, type DestinationStream, type Logger } from 'pino';
import pretty from 'pino-pretty';
import type { Config } from './config.ts';
import { tracer } from './tracing/tracing.ts';

export type { Logger };

/** Paths redacted to `[redacted]` wherever they appear in a log line (docs/operations.md#logs). */
export const REDACTED_PATHS = [
  'req.headers.authorization', 'req.headers.cookie', 'req.headers["stripe-signature"]',
  'password', 'token', 'secret', 'apiKey', '*.password', '*.token', '*.secret', '*.apiKey',
  'JWT_SECRET', 'DATABASE_URL', 'SMTP_URL', 'REDIS_URL', 'AMQP_URL', 'PSP_API_KEY', 'PSP_WEBHOOK_SECRET', 'METRICS_TOKEN',
  '*.JWT_SECRET', '*.DATABASE_URL', '*.SMTP_URL', '*.REDIS_URL', '*.AMQP_URL', '*.PSP_API_KEY', '*.PSP_WEBHOOK_SECRET', '*.METRICS_TOKEN',
];

/** `user:password@` in a URL (a driver's error message naming its connection string). */
const URL_CREDENTIALS = /\b([a-z][a-z0-9+.-]*:\/\/[^:/?#@\s]*):[^@/?#\s]+@/gi;

/** Errors as pino serializes them, with any password in a URL replaced. */
function errorSerializer(err: Error): Record<string, unknown> {
  const out = stdSerializers.err(err) as unknown as Record<string, unknown>;
  for (const key of ['message', 'stack'] as const) if (typeof out[key] === 'string') out[key] = (out[key] as string).replace(URL_CREDENTIALS, '$1:[redacted]@');
  return out;
}

const TRACE_FIELDS = Symbol('flashsale.traceFields');
type TracedLogger = Logger & { [TRACE_FIELDS]?: { trace_id: string; span_id: string } };

/**
 * A child of `log` whose lines carry `ids` when no span is active where they are logged (a span that
 * is active wins): an HTTP request's logger, so that lines logged outside its handler's async
 * context (Fastify's `request completed`) still name the request's span. Tracing on only.
 */
export function withTraceFields<L extends { child(bindings: Record<string, never>): unknown }>(log: L, ids: { trace_id: string; span_id: string }): L {
  const child = log.child({}) as TracedLogger;
  child[TRACE_FIELDS] = ids;
  return child as unknown as L;
}

/** `auto` is pretty when a person is watching (stdout is a terminal), JSON lines otherwise (a file, a pipe, a log shipper). */
export function resolveLogFormat(format: Config['LOG_FORMAT'], stdoutIsTty: boolean): 'json' | 'pretty' {
  return format === 'auto' ? (stdoutIsTty ? 'pretty' : 'json') : format;
}

/**
 * The process's logger: JSON lines on stdout, or pino-pretty's lines (LOG_FORMAT); the same fields
 * and the same redaction either way, since redaction happens before the line is formatted. While
 * tracing is on (started before the logger is made), every line logged inside a span carries its
 * `trace_id` and `span_id` (or those its logger was given by `withTraceFields`). `destination` is for tests (default stdout).
 */
export function createLogger(config: Pick<Config, 'LOG_LEVEL'> & Partial<Pick<Config, 'LOG_FORMAT'>>, destination?: DestinationStream): Logger {
  const options = {
    level: config.LOG_LEVEL,
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    serializers: { err: errorSerializer },
    ...(tracer.enabled ? { mixin: (_line: object, _level: number, logger: Logger) => tracer.logFields() ?? (logger as TracedLogger)[TRACE_FIELDS] ?? {} } : {}),
  };
  const format = resolveLogFormat(config.LOG_FORMAT ?? 'json', process.stdout.isTTY === true);
  if (format === 'pretty') {
    // Synchronous, in this thread: a development terminal, where the order of lines and banners matters more than throughput.
    return pino(options, pretty({ destination: destination ?? 1, sync: true, colorize: destination === undefined && process.stdout.isTTY === true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' }));
  }
  return destination ? pino(options, destination) : pino(options);
}
