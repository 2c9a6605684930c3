import { parsePhoneNumberFromString } from 'libphonenumber-js/max';
import { AppError } from '../platform/errors.ts';

/**
 * A phone number as we store and text it: E.164 (`+14155552671`). Input must be international
 * (a leading `+` and the country code: no default region is guessed) and a number that can exist
 * in that country's numbering plan, by libphonenumber's full metadata — not just plausible length.
 */
export function toE164(input: string): string {
  const parsed = parsePhoneNumberFromString(input.trim());
  if (!parsed || !parsed.isValid()) {
    throw new AppError('validation_failed', 'phone must be a valid international number, with + and the country code (e.g. +14155552671).');
  }
  return parsed.format('E.164');
}
