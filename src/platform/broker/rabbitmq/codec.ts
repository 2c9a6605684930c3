import { createHash } from 'node:crypto';
import type { ConsumeMessage } from 'amqplib';
import type { Message } from '../broker.ts';
import type { DeadRecord } from './dead-letters.ts';
import { ATTEMPT_HEADER, LAST_ERROR_HEADER, TRACEPARENT_HEADER } from './topology.ts';

/** How an AMQP message carries ours: messageId = outbox message id, type = topic, body = JSON payload. */

export class UndecodableMessage extends Error {
  override name = 'UndecodableMessage';
}

export function attemptOf(message: ConsumeMessage): number {
  const value: unknown = message.properties.headers?.[ATTEMPT_HEADER];
  const n = typeof value === 'number' ? value : typeof value === 'string' ? Number(value) : NaN;
  return Number.isInteger(n) && n >= 1 ? n : 1;
}

export function messageIdOf(message: ConsumeMessage): string | undefined {
  const id: unknown = message.properties.messageId;
  return typeof id === 'string' && id.length > 0 ? id : undefined;
}

export function topicOf(message: ConsumeMessage): string {
  const type: unknown = message.properties.type;
  return typeof type === 'string' && type.length > 0 ? type : message.fields.routingKey;
}

export function decode(message: ConsumeMessage): Message {
  const id = messageIdOf(message);
  if (!id) throw new UndecodableMessage('message has no message id: it cannot be deduplicated');
  let payload: unknown;
  try {
    payload = JSON.parse(message.content.toString('utf8'));
  } catch (error) {
    throw new UndecodableMessage(`message body is not JSON: ${String(error)}`);
  }
  return { id, topic: topicOf(message), payload, attempt: attemptOf(message) };
}

/** A dead-lettered AMQP message as a `dead_letters` row. */
export function deadRecordOf(consumer: string, message: ConsumeMessage, now: Date): DeadRecord {
  let payload: unknown;
  try {
    payload = JSON.parse(message.content.toString('utf8'));
  } catch {
    payload = { undecodableBase64: message.content.toString('base64') };
  }
  const lastError: unknown = message.properties.headers?.[LAST_ERROR_HEADER];
  const traceparent: unknown = message.properties.headers?.[TRACEPARENT_HEADER];
  return {
    consumer,
    messageId: messageIdOf(message) ?? `no-id-${createHash('sha256').update(message.content).digest('hex').slice(0, 32)}`,
    topic: topicOf(message),
    payload,
    attempts: attemptOf(message),
    lastError: typeof lastError === 'string' ? lastError : describeDeath(message),
    deadAt: now,
    traceparent: typeof traceparent === 'string' && traceparent.length > 0 ? traceparent : undefined,
  };
}

/** Why RabbitMQ itself dead-lettered a message (no handler error recorded it). */
function describeDeath(message: ConsumeMessage): string {
  const headers = message.properties.headers ?? {};
  const deaths: unknown = headers['x-death'];
  const first = Array.isArray(deaths) ? (deaths[0] as { reason?: unknown; queue?: unknown } | undefined) : undefined;
  const reason = typeof first?.reason === 'string' ? first.reason : 'unknown';
  const queue = typeof first?.queue === 'string' ? first.queue : 'unknown';
  const hint = reason === 'delivery_limit'
    ? ': delivered more often than x-delivery-limit without an ack (a handler that crashes its process, or a stuck consumer)'
    : '';
  return `dead-lettered by RabbitMQ from ${queue}, reason ${reason}${hint}`;
}
