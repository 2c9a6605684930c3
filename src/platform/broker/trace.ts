import { tracer, type Span, type TraceCarrier } from '../tracing/tracing.ts';
import type { Message } from './broker.ts';

/**
 * The spans of a message's way through a broker, named and attributed after OpenTelemetry's
 * messaging conventions: `<topic> publish` (producer) when the relay sends an outbox row on, as a
 * child of the span that wrote the event; `<topic> process` (consumer) around each handler, as a
 * child of the publish. The W3C traceparent travels in the outbox row, then in the delivery row
 * (in-process) or the AMQP headers (RabbitMQ). Nothing is made while tracing is off.
 */

export type MessagingSystem = 'in-process' | 'rabbitmq';

export function carrierOf(traceparent: unknown): TraceCarrier | undefined {
  return typeof traceparent === 'string' && traceparent.length > 0 ? { traceparent } : undefined;
}

/** The relay's span for one row, or undefined (tracing off, or the event was written outside any trace). */
export function publishSpan(topic: string, messageId: string, traceparent: string | null, system: MessagingSystem): Span | undefined {
  if (!tracer.enabled || !traceparent) return undefined;
  return tracer.start(`${topic} publish`, {
    kind: 'producer', parent: { traceparent },
    attributes: { 'messaging.system': system, 'messaging.operation.type': 'send', 'messaging.destination.name': topic, 'messaging.message.id': messageId },
  });
}

/**
 * An admin's replay of a dead letter: a `<topic> publish` span in the trace the message was written
 * in (its consumers' next attempt is a child of it), linked to the span doing the replay (the
 * admin's request). Undefined while tracing is off; without a stored trace, a child of the active span.
 */
export function replaySpan(topic: string, messageId: string, traceparent: string | undefined, system: MessagingSystem): Span | undefined {
  if (!tracer.enabled) return undefined;
  return tracer.start(`${topic} publish`, {
    kind: 'producer', ...(traceparent ? { parent: { traceparent }, links: [tracer.current()] } : {}),
    attributes: {
      'messaging.system': system, 'messaging.operation.type': 'send', 'messaging.destination.name': topic, 'messaging.message.id': messageId,
      'flashsale.replay': true,
    },
  });
}

/** Runs a consumer's handler in its span, a child of the publish (a new trace when the message carries none). */
export function consumeSpan<T>(consumer: string, message: Message, parent: TraceCarrier | undefined, handle: () => Promise<T>, system: MessagingSystem = 'in-process'): Promise<T> {
  if (!tracer.enabled) return handle();
  return tracer.run(`${message.topic} process`, {
    kind: 'consumer', parent: parent ?? null,
    attributes: {
      'messaging.system': system, 'messaging.operation.type': 'process', 'messaging.destination.name': message.topic,
      'messaging.consumer.group.name': consumer, 'messaging.message.id': message.id, 'flashsale.attempt': message.attempt,
    },
  }, handle);
}
