import type { Clock } from '../platform/clock.ts';
import type { Database } from '../platform/database/index.ts';
import type { Role, TokenService } from '../platform/tokens.ts';

export interface User {
  id: string;
  email: string;
  role: Role;
}

export interface Shop {
  id: string;
  ownerId: string;
  name: string;
}

/** Password hashing: the scrypt functions of passwords.ts unless a test counts their calls. */
export interface Passwords {
  hash(password: string): Promise<string>;
  verify(password: string, stored: string): Promise<boolean>;
}

/** The dependencies the accounts use cases share, built once by `createAccounts`. */
export interface AccountsContext {
  db: Database;
  clock: Clock;
  tokens: TokenService;
  passwords: Passwords;
}

/** The one spelling of an email: accounts, logins and the per-account login limit use it. */
export function normalizeEmail(email: string): string {
  return email.trim().toLowerCase();
}
