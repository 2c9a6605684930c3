import { pino, type Logger } from 'pino';
import type { Config } from './config.ts';

export type { Logger };

/** JSON logs; secrets are redacted wherever they could appear. */
export function createLogger(config: Pick<Config, 'LOG_LEVEL'>): Logger {
  return pino({
    level: config.LOG_LEVEL,
    redact: {
      paths: ['req.headers.authorization', 'req.headers.cookie', '*.password', '*.token', 'password', 'token', 'JWT_SECRET', 'DATABASE_URL', 'SMTP_URL', 'REDIS_URL', 'AMQP_URL', 'PSP_API_KEY', 'PSP_WEBHOOK_SECRET', 'METRICS_TOKEN', '*.apiKey', 'req.headers["stripe-signature"]'],
      censor: '[redacted]',
    },
  });
}
