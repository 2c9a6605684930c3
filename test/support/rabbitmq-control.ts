import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import amqp from 'amqplib';
import { SERVICES } from './engines.ts';

const run = promisify(execFile);

/**
 * Stops and starts the RabbitMQ application of the machine's broker (every connection is dropped,
 * the listener closes, durable queues come back from disk), as a restart does. It disturbs every
 * client of the broker, so only tests under test/serial/ (run one at a time, after the rest) use it.
 */
export async function stopRabbitMq(): Promise<void> {
  await run('rabbitmqctl', ['stop_app'], { timeout: 60_000 });
}

export async function startRabbitMq(): Promise<void> {
  await run('rabbitmqctl', ['start_app'], { timeout: 120_000 });
  await untilRabbitMqAccepts();
}

async function untilRabbitMqAccepts(): Promise<void> {
  for (let i = 0; i < 120; i++) {
    try {
      const connection = await amqp.connect(SERVICES.rabbitmq.url);
      await connection.close();
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  throw new Error('RabbitMQ did not come back after start_app');
}
