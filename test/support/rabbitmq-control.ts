import { startRabbitMq as start, stopRabbitMq } from '../../bench/chaos/faults.ts';
import { SERVICES } from './engines.ts';

/**
 * Stopping RabbitMQ disturbs every client of the broker, so only tests under test/serial/ (run one
 * at a time, after the rest) use these.
 */
export { stopRabbitMq };
export const startRabbitMq = (): Promise<void> => start(SERVICES.rabbitmq.url);
