import { buildSystem } from '../../src/app.ts';
import { clusterSecrets, freePort } from '../../src/cli/child.ts';
import { freshAmqpPrefix, freshPostgres, freshRedisPrefix } from './engines.ts';
import { testConfig } from './harness.ts';

export interface DistributedRun {
  /** The environment of every `flashsale api` / `worker` child: the engines, the secret, test-sized limits. */
  env: Record<string, string>;
  apiPort: number;
  /** The test database, for asserting on what the children wrote. */
  db: Awaited<ReturnType<typeof freshPostgres>>['db'];
  /** Drops the database, the Redis keys and the RabbitMQ queues and exchanges the run declared. */
  cleanup(): Promise<void>;
}

/**
 * A fresh PostgreSQL database, Redis prefix and RabbitMQ prefix for tests that run flashsale as
 * real child processes, and the environment those processes share: secrets of their own (the roles
 * refuse the published ones), `secret` as JWT_SECRET so the caller can issue tokens. `overrides` win.
 */
export async function distributedRun(secret: string, overrides: Record<string, string> = {}): Promise<DistributedRun> {
  const postgres = await freshPostgres();
  const redis = await freshRedisPrefix();
  const rabbit = await freshAmqpPrefix();
  const apiPort = await freePort();
  // Topology names for cleanup, from a system that is built but never started.
  const probe = await buildSystem(testConfig({ DATABASE_URL: postgres.url, AMQP_URL: rabbit.url, AMQP_PREFIX: rabbit.prefix }));
  await probe.close();
  return {
    apiPort, db: postgres.db,
    env: {
      DATABASE_URL: postgres.url, REDIS_URL: redis.url, REDIS_KEY_PREFIX: redis.prefix, AMQP_URL: rabbit.url, AMQP_PREFIX: rabbit.prefix,
      ...clusterSecrets(), JWT_SECRET: secret, PORT: String(apiPort), PSP_URL: 'http://127.0.0.1:9', LOG_LEVEL: 'info', DATABASE_POOL_SIZE: '6',
      RATE_LIMIT_IP_MAX: '1000000', RATE_LIMIT_USER_MAX: '1000000', MAX_EVENT_LOOP_DELAY_MS: '0', BROKER_POLL_MS: '50', AMQP_PREFETCH: '8',
      ...overrides,
    },
    async cleanup() {
      await rabbit.drop([probe.broker]).catch(() => {});
      await redis.drop().catch(() => {});
      await postgres.drop().catch(() => {});
    },
  };
}
