import { pino, type DestinationStream, type Logger } from 'pino';
import type { Config } from './config.ts';
import { tracer } from './tracing/tracing.ts';

export type { Logger };

/**
 * JSON logs; secrets are redacted wherever they could appear. While tracing is on (started before
 * the logger is made), every line logged inside a span carries its `trace_id` and `span_id`.
 */
export function createLogger(config: Pick<Config, 'LOG_LEVEL'>, destination?: DestinationStream): Logger {
  return pino({
    level: config.LOG_LEVEL,
    redact: {
      paths: ['req.headers.authorization', 'req.headers.cookie', '*.password', '*.token', 'password', 'token', 'JWT_SECRET', 'DATABASE_URL', 'SMTP_URL', 'REDIS_URL', 'AMQP_URL', 'PSP_API_KEY', 'PSP_WEBHOOK_SECRET', 'METRICS_TOKEN', '*.apiKey', 'req.headers["stripe-signature"]'],
      censor: '[redacted]',
    },
    ...(tracer.enabled ? { mixin: () => tracer.logFields() ?? {} } : {}),
  }, destination);
}
