import { Type, type Static, type TSchema, type TUnsafe } from '@sinclair/typebox';
import { ERRORS, type ErrorCode } from '../errors.ts';

/** The canonical 8-4-4-4-12 form only: the `uuid` format alone also admits `urn:uuid:…`, which PostgreSQL refuses. */
export const Uuid = Type.String({ format: 'uuid', pattern: '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$' });
/** Free text that is stored: PostgreSQL text cannot hold U+0000. */
export const Text = (options: { minLength?: number; maxLength: number; description?: string }) => Type.String({ ...options, pattern: '^[^\\u0000]*$' });
export const Money = Type.Integer({ minimum: 0, maximum: 1_000_000_000_000, description: 'Integer minor units (cents).' });
export const Currency = Type.String({ pattern: '^[A-Z]{3}$', description: 'ISO 4217 code.' });
/** Typed as Date for handlers; serialized as an RFC 3339 string. */
export const Timestamp = Type.Unsafe<Date>({ type: 'string', format: 'date-time' });
export const TimestampInput = Type.String({ format: 'date-time' });

/**
 * One of these strings, as `enum`. Not a union of literals in an answer: fast-json-stringify writes
 * a union (`anyOf`) by running Ajv over its branches on every answer, and compiles that validator
 * on the first answer (a 100+ ms stall at a sale's first order). Measured in docs/benchmarks.md.
 */
export function StringEnum<T extends string>(values: readonly T[], options: { default?: T; description?: string } = {}): TUnsafe<T> {
  return Type.Unsafe<T>({ type: 'string', enum: [...values], ...options });
}

/** The schema or null, as OpenAPI 3.0 says it (`nullable`): written without Ajv, unlike a union with null. */
export function Nullable<T extends TSchema>(schema: T, options: { description?: string } = {}): TUnsafe<Static<T> | null> {
  return Type.Unsafe<Static<T> | null>({ ...schema, nullable: true, ...options });
}

const ErrorCodeSchema = StringEnum(Object.keys(ERRORS) as ErrorCode[]);

export const ErrorBody = Type.Object({
  error: Type.Object({
    code: ErrorCodeSchema,
    message: Type.String(),
    details: Type.Optional(Type.Unknown()),
  }),
});

export const Page = Type.Object({
  limit: Type.Integer({ minimum: 1, maximum: 100, default: 20 }),
  offset: Type.Integer({ minimum: 0, maximum: 10_000, default: 0 }),
}, { additionalProperties: false });

export const IdParams = Type.Object({ id: Uuid });

/** The error responses a route documents, by status. */
export function errors(...statuses: number[]): Record<number, TSchema> {
  return Object.fromEntries(statuses.map((s) => [s, ErrorBody]));
}

export const bearer = [{ bearer: [] }];
