import { AppError } from '../platform/errors.ts';
import type { Role } from '../platform/tokens.ts';
import type { AccountsContext } from './context.ts';
import { normalizeEmail, type User } from './model.ts';
import { unmatchableHash } from './passwords.ts';
import * as sql from './sql.ts';

/** Email and password for a token; one answer, invalid_credentials, whether the email or the password is wrong. */
export function createLogin({ db, tokens, passwords }: AccountsContext): (email: string, password: string) => Promise<{ token: string; user: User }> {
  /** Checked when the email is unknown, so that both failures cost one scrypt and timing does not reveal which emails exist. */
  const unknownUserHash = unmatchableHash();

  return async (email, password) => {
    const [row] = await db.query<{ id: string; email: string; password_hash: string; role: Role }>(sql.userByEmail, [normalizeEmail(email)]);
    const matches = await passwords.verify(password, row?.password_hash ?? unknownUserHash);
    if (!row || !matches) throw new AppError('invalid_credentials');
    const user = { id: row.id, email: row.email, role: row.role };
    return { token: tokens.issue({ userId: user.id, role: user.role }), user };
  };
}
