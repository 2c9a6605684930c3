/**
 * The faults a drill injects into the machine's engines. RabbitMQ and Redis are shared by every
 * client on the machine: the RabbitMQ stop disturbs them all (tests use it only in their serial
 * phase); the Redis flush removes only the keys under the cluster's own prefix.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import amqp from 'amqplib';
import pg from 'pg';

const run = promisify(execFile);

/** Stops the RabbitMQ application (every connection drops, the listener closes), as a crash or restart does. */
export async function stopRabbitMq(): Promise<void> {
  await run('rabbitmqctl', ['stop_app'], { timeout: 60_000 });
}

/** Starts it again and resolves once it accepts connections at `url`. */
export async function startRabbitMq(url: string): Promise<void> {
  await run('rabbitmqctl', ['start_app'], { timeout: 120_000 });
  for (let i = 0; i < 240; i++) {
    try {
      const connection = await amqp.connect(url);
      await connection.close();
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  throw new Error('RabbitMQ did not come back after start_app');
}

/** A policy on one queue (e.g. a length limit that makes it refuse publishes: a full queue). */
export async function setQueuePolicy(name: string, queue: string, definition: Record<string, unknown>): Promise<void> {
  await run('rabbitmqctl', ['set_policy', '--apply-to', 'queues', '--priority', '100', name, `^${queue.replaceAll('.', '\\.')}$`, JSON.stringify(definition)], { timeout: 60_000 });
}

export async function clearQueuePolicy(name: string): Promise<void> {
  await run('rabbitmqctl', ['clear_policy', name], { timeout: 60_000 });
}

/** Deletes a queue, as an operator's mistake or a cleanup script would. */
export async function deleteQueue(url: string, queue: string): Promise<void> {
  const connection = await amqp.connect(url);
  try {
    const channel = await connection.createChannel();
    await channel.deleteQueue(queue);
  } finally {
    await connection.close();
  }
}

/** Messages in a queue, ready and unacknowledged (what `rabbitmqctl list_queues` reports). */
export async function queueDepth(queue: string): Promise<{ ready: number; unacked: number }> {
  const { stdout } = await run('rabbitmqctl', ['list_queues', '--quiet', '--no-table-headers', 'name', 'messages_ready', 'messages_unacknowledged'], { timeout: 60_000 });
  for (const line of stdout.split('\n')) {
    const [name, ready, unacked] = line.trim().split(/\s+/);
    if (name === queue) return { ready: Number(ready), unacked: Number(unacked) };
  }
  return { ready: 0, unacked: 0 };
}

/** Terminates every connection to `database` but the killer's own (a failover or an admin does this); returns how many. */
export async function killDatabaseConnections(adminUrl: string, database: string): Promise<number> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ killed: boolean }>(
      'select pg_terminate_backend(pid) as killed from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()', [database]);
    return rows.filter((r) => r.killed).length;
  } finally {
    await client.end();
  }
}
