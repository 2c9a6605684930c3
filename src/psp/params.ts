import { PspError } from './errors.ts';

/**
 * The parameter readers: Stripe sends strings (form bodies); JSON bodies carry real types. Both are
 * accepted. Each reader answers a Stripe-shaped 400 naming the parameter it refuses.
 */
export type Params = Record<string, unknown>;

export const missing = (param: string) => new PspError(400, 'invalid_request_error', `Missing required param: ${param}.`, 'parameter_missing', param);

export function readString(params: Params, name: string): string | undefined {
  const value = params[name];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw new PspError(400, 'invalid_request_error', `Invalid string: ${name}`, 'parameter_invalid_string', name);
  return value === '' ? undefined : value;
}

export function readBoolean(params: Params, name: string): boolean {
  const value = params[name];
  if (value === undefined || value === null || value === false || value === 'false' || value === '') return false;
  if (value === true || value === 'true') return true;
  throw new PspError(400, 'invalid_request_error', `Invalid boolean: ${String(value)}`, 'parameter_invalid_boolean', name);
}

/** A positive integer in minor units, at most 99,999,999 (Stripe's limit). */
export function readAmount(params: Params, name: string): number | undefined {
  const value = params[name];
  if (value === undefined || value === null || value === '') return undefined;
  const number = typeof value === 'number' ? value : typeof value === 'string' && /^-?\d+$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(number)) throw new PspError(400, 'invalid_request_error', `Invalid integer: ${String(value)}`, 'parameter_invalid_integer', name);
  if (number < 1) throw new PspError(400, 'invalid_request_error', `This value must be greater than or equal to 1.`, 'amount_too_small', name);
  if (number > 99_999_999) throw new PspError(400, 'invalid_request_error', `Amount must be no more than 99,999,999.`, 'amount_too_large', name);
  return number;
}

export function readCurrency(params: Params): string {
  const value = readString(params, 'currency');
  if (value === undefined) throw missing('currency');
  if (!/^[A-Za-z]{3}$/.test(value)) throw new PspError(400, 'invalid_request_error', `Invalid currency: ${value.slice(0, 20)}. Use a three-letter ISO code.`, 'parameter_invalid_string', 'currency');
  return value.toLowerCase();
}

export function readUrl(params: Params, name: string): string | undefined {
  const value = readString(params, name);
  if (value === undefined) return undefined;
  let url: URL | undefined;
  try {
    url = new URL(value);
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) throw new PspError(400, 'invalid_request_error', `Not a valid URL: ${name}`, 'url_invalid', name);
  return url.toString();
}

/** Up to 50 keys (≤ 40 chars) with string values (≤ 500 chars); numbers and booleans become strings. */
export function readMetadata(params: Params): Record<string, string> {
  const value = params.metadata;
  if (value === undefined || value === null || value === '') return {};
  if (typeof value !== 'object' || Array.isArray(value)) throw new PspError(400, 'invalid_request_error', 'Invalid object: metadata', 'parameter_invalid_object', 'metadata');
  const entries = Object.entries(value);
  if (entries.length > 50) throw new PspError(400, 'invalid_request_error', 'Metadata can have at most 50 keys.', 'parameter_invalid_object', 'metadata');
  const metadata: Record<string, string> = {};
  for (const [key, v] of entries) {
    if (key.length > 40) throw new PspError(400, 'invalid_request_error', `Metadata keys can be at most 40 characters: ${key.slice(0, 40)}…`, 'parameter_invalid_string', `metadata[${key.slice(0, 40)}]`);
    if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') {
      throw new PspError(400, 'invalid_request_error', `Invalid string: metadata[${key}]`, 'parameter_invalid_string', `metadata[${key}]`);
    }
    const text = String(v);
    if (text.length > 500) throw new PspError(400, 'invalid_request_error', `Metadata values can be at most 500 characters: metadata[${key}]`, 'parameter_invalid_string', `metadata[${key}]`);
    if (text !== '') metadata[key] = text;
  }
  return metadata;
}
