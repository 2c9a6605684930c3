import { createHash, randomUUID } from 'node:crypto';
import pg from 'pg';
import { Redis } from 'ioredis';
import { deleteKeysUnder as deleteKeysMatching } from '../../src/platform/redis.ts';
import amqp from 'amqplib';
import type { Broker } from '../../src/platform/broker/broker.ts';
import { RabbitMqBroker } from '../../src/platform/broker/rabbitmq.ts';
import { deleteTopologies as deleteTopologyQueues, type Topology } from '../../src/platform/broker/rabbitmq/topology.ts';
import { listMigrations, migrate } from '../../src/platform/database/migrate.ts';
import { PostgresDatabase } from '../../src/platform/database/postgres.ts';
import type { Database } from '../../src/platform/database/database.ts';

/** Which engines a behavioural suite runs on: set by the distributed wrappers in test/distributed/. */
export type Engines = 'embedded' | 'distributed';

export function selectedEngines(): Engines {
  return process.env.FLASHSALE_TEST_ENGINES === 'distributed' ? 'distributed' : 'embedded';
}

export const SERVICES = {
  postgres: {
    url: process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres',
    start: 'pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start',
  },
  redis: {
    url: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
    start: 'redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log',
  },
  rabbitmq: {
    url: process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672',
    start: 'rabbitmq-server -detached',
  },
} as const;

/** A missing service fails the run with its name and how to start it; distributed tests are never skipped. */
export function serviceMissing(name: keyof typeof SERVICES, error: unknown): Error {
  return new Error(`${name} is not reachable at ${SERVICES[name].url} (${String(error)}).\nStart it with: ${SERVICES[name].start}`);
}

function withDatabase(url: string, name: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${name}`;
  return parsed.toString();
}

/**
 * A fresh PostgreSQL database for one test file, cloned from a migrated template (CREATE DATABASE …
 * TEMPLATE is a file copy: far cheaper than migrating every time). Dropped by the returned `drop`.
 */
export async function freshPostgres(): Promise<{ url: string; db: Database; drop(): Promise<void> }> {
  const admin = new pg.Client({ connectionString: SERVICES.postgres.url });
  try {
    await admin.connect();
  } catch (error) {
    throw serviceMissing('postgres', error);
  }
  const migrations = await listMigrations();
  const template = `flashsale_tpl_${createHash('sha256').update(JSON.stringify(migrations)).digest('hex').slice(0, 12)}`;
  await admin.query('select pg_advisory_lock(7340002)');
  try {
    const exists = await admin.query('select 1 from pg_database where datname = $1', [template]);
    if (exists.rowCount === 0) {
      await admin.query(`create database ${template}`);
      const db = new PostgresDatabase(withDatabase(SERVICES.postgres.url, template), 2);
      await migrate(db);
      await db.close();
    }
    const name = `flashsale_t_${randomUUID().replaceAll('-', '').slice(0, 16)}`;
    await admin.query(`create database ${name} template ${template}`);
    const url = withDatabase(SERVICES.postgres.url, name);
    const db = new PostgresDatabase(url, 10);
    return {
      url, db,
      async drop() {
        await db.close().catch(() => {});
        await admin.query(`drop database if exists ${name} with (force)`);
        await admin.end();
      },
    };
  } finally {
    await admin.query('select pg_advisory_unlock(7340002)').catch(() => {});
  }
}

/** Deletes the keys under `prefix:` — only those: the Redis is shared with other test files. */
export const deleteKeysUnder = (client: Redis, prefix: string): Promise<number> => deleteKeysMatching(client, `${prefix}:`);

/** A fresh key prefix on the shared Redis for one test file; `drop` deletes only its keys. */
export async function freshRedisPrefix(): Promise<{ url: string; prefix: string; drop(): Promise<void> }> {
  const client = new Redis(SERVICES.redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await client.connect();
    await client.ping();
  } catch (error) {
    client.disconnect();
    throw serviceMissing('redis', error);
  }
  const prefix = `fst${randomUUID().replaceAll('-', '').slice(0, 12)}`;
  return {
    url: SERVICES.redis.url, prefix,
    async drop() {
      await deleteKeysUnder(client, prefix);
      client.disconnect();
    },
  };
}

/** A fresh exchange/queue prefix on the shared RabbitMQ for one test file; `drop` deletes what the brokers declared. */
export async function freshAmqpPrefix(): Promise<{ url: string; prefix: string; drop(brokers: readonly Broker[]): Promise<void> }> {
  let connection;
  try {
    connection = await amqp.connect(SERVICES.rabbitmq.url);
  } catch (error) {
    throw serviceMissing('rabbitmq', error);
  }
  await connection.close();
  const prefix = `fst${randomUUID().replaceAll('-', '').slice(0, 12)}`;
  return {
    url: SERVICES.rabbitmq.url, prefix,
    async drop(brokers) {
      const topologies = brokers.flatMap((b) => (b instanceof RabbitMqBroker ? [b.topology()] : []));
      await deleteTopologies(SERVICES.rabbitmq.url, topologies);
    },
  };
}

/** Deletes every queue and exchange the brokers declared (queue.delete / exchange.delete are idempotent). */
export async function deleteTopologies(url: string, topologies: readonly Topology[]): Promise<void> {
  const connection = await amqp.connect(url);
  try {
    await deleteTopologyQueues(await connection.createChannel(), topologies);
  } finally {
    await connection.close();
  }
}
