import type { Static, TSchema } from '@sinclair/typebox';
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler';

/**
 * A payload that breaks its event's contract. Thrown by the consumer, it is retried like any
 * failure and then dead-lettered: a malformed event is never applied half-read.
 */
export class MalformedEventError extends Error {
  override name = 'MalformedEventError';
}

const checks = new WeakMap<TSchema, TypeCheck<TSchema>>();

/** The payload of a consumed message, checked against its contract (the schema its producer typed against). */
export function readPayload<S extends TSchema>(schema: S, message: { id: string; topic: string; payload: unknown }): Static<S> {
  let check = checks.get(schema);
  if (!check) {
    check = TypeCompiler.Compile(schema);
    checks.set(schema, check);
  }
  if (check.Check(message.payload)) return message.payload as Static<S>;
  const first = check.Errors(message.payload).First();
  throw new MalformedEventError(`${message.topic} ${message.id}: the payload breaks its contract at ${first?.path || '/'}: ${first?.message ?? 'invalid'}`);
}
