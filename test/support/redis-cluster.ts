import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { freePort } from './process.ts';

const run = promisify(execFile);

export interface RedisClusterUnderTest {
  /** One URL per master, for REDIS_URL with REDIS_CLUSTER=true. */
  urls: string[];
  stop(): Promise<void>;
}

/**
 * A real three-master Redis Cluster of this test's own (redis-server processes on free ports, no
 * persistence), so cluster behaviour is tested against Redis itself, not against a stand-in.
 */
export async function startRedisCluster(masters = 3): Promise<RedisClusterUnderTest> {
  const dir = await mkdtemp(join(tmpdir(), 'flashsale-redis-cluster-'));
  const ports = await Promise.all(Array.from({ length: masters }, () => freePort()));
  const servers: ChildProcess[] = [];
  const stop = async () => {
    for (const server of servers) server.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  };
  try {
    for (const port of ports) {
      servers.push(spawn('redis-server', [
        '--port', String(port), '--bind', '127.0.0.1', '--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${port}.conf`,
        '--save', '', '--appendonly', 'no', '--dir', dir,
      ], { stdio: 'ignore' }));
    }
    await Promise.all(ports.map((port) => untilRedisAnswers(port)));
    await run('redis-cli', ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes']);
    await Promise.all(ports.map((port) => untilClusterOk(port)));
    return { urls: ports.map((p) => `redis://127.0.0.1:${p}`), stop };
  } catch (error) {
    await stop();
    throw new Error(`could not start a Redis Cluster with redis-server/redis-cli (${error instanceof Error ? error.message : String(error)}); they come with the redis-server package`);
  }
}

async function untilRedisAnswers(port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const client = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    client.on('error', () => {});
    try {
      await client.connect();
      await client.ping();
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    } finally {
      client.disconnect();
    }
  }
  throw new Error(`redis-server on ${port} did not answer`);
}

async function untilClusterOk(port: number): Promise<void> {
  const client = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 0 });
  try {
    for (let i = 0; i < 200; i++) {
      const info = await client.cluster('INFO');
      if (String(info).includes('cluster_state:ok')) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`cluster not ok on ${port}`);
  } finally {
    client.disconnect();
  }
}
