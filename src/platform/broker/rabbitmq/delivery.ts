import type { Channel, ConsumeMessage } from 'amqplib';
import type { Session } from './session.ts';

/** A message RabbitMQ handed us, with the session and channel it can only be acked on. */
export interface Delivery {
  session: Session;
  channel: Channel;
  message: ConsumeMessage;
}

export function ack(delivery: Delivery): void {
  if (!delivery.session.owns(delivery.channel)) return; // redelivered after the reconnect; deduped then
  try {
    delivery.channel.ack(delivery.message);
  } catch {
    // the channel closed under us: same as above
  }
}
