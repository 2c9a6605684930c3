import type { Clock } from '../platform/clock.ts';
import type { Database } from '../platform/database/index.ts';
import type { TokenService } from '../platform/tokens.ts';

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
