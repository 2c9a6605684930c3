import { Cluster, Redis, type RedisOptions } from 'ioredis';

/**
 * Where Redis is: one node, or the seed nodes of a Redis Cluster. Every Redis connection of the app
 * (stock gate, sold-out channel, rate limits) is opened here, so single node vs cluster is decided
 * in one place, from `REDIS_URL` and `REDIS_CLUSTER`.
 */
export interface RedisTarget {
  /** One URL, or with `cluster` any number of seed-node URLs (the client discovers the rest). */
  urls: readonly string[];
  cluster: boolean;
}

export function redisTarget(config: { REDIS_URL?: string | undefined; REDIS_CLUSTER: boolean }): RedisTarget | undefined {
  if (!config.REDIS_URL) return undefined;
  const urls = config.REDIS_URL.split(',').map((u) => u.trim()).filter((u) => u.length > 0);
  if (urls.length > 1 && !config.REDIS_CLUSTER) throw new Error('REDIS_URL lists several nodes: set REDIS_CLUSTER=true for a Redis Cluster, or give one URL');
  return { urls, cluster: config.REDIS_CLUSTER };
}

/** Host, port and credentials of a `redis://user:pass@host:port` URL, as ioredis options (a cluster has only database 0). */
function nodeOf(url: string): { host: string; port: number; options: RedisOptions } {
  const parsed = new URL(url);
  const options: RedisOptions = {};
  if (parsed.username) options.username = decodeURIComponent(parsed.username);
  if (parsed.password) options.password = decodeURIComponent(parsed.password);
  if (parsed.protocol === 'rediss:') options.tls = {};
  return { host: parsed.hostname.replace(/^\[|\]$/g, ''), port: Number(parsed.port || 6379), options };
}

/** A connection to one node or to a cluster, as `connectRedis` opens it. */
export type RedisClient = Redis | Cluster;

/** A new connection (a subscriber needs its own); `options` apply to every node. */
export function connectRedis(target: RedisTarget, options: RedisOptions = {}): RedisClient {
  if (!target.cluster) return new Redis(target.urls[0]!, options);
  const nodes = target.urls.map(nodeOf);
  return new Cluster(nodes.map(({ host, port }) => ({ host, port })), { redisOptions: { ...nodes[0]!.options, ...options } });
}

/**
 * Deletes every key under `prefix` and says how many (SCAN + DEL, never FLUSHALL: the Redis may be shared). For a
 * throwaway prefix — a test's, a benchmark run's — never a live one.
 */
export async function deleteKeysUnder(client: Redis, prefix: string): Promise<number> {
  let deleted = 0;
  let cursor = '0';
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    if (keys.length > 0) deleted += await client.del(...keys);
    cursor = next;
  } while (cursor !== '0');
  return deleted;
}
