import { randomUUID } from 'node:crypto';
import type { Clock } from '../platform/clock.ts';
import type { Database } from '../platform/database/index.ts';
import { AppError } from '../platform/errors.ts';
import type { Principal, Role, TokenService } from '../platform/tokens.ts';
import { hashPassword, unmatchableHash, verifyPassword } from './passwords.ts';
import * as sql from './sql.ts';

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

export interface AccountsDeps {
  db: Database;
  clock: Clock;
  tokens: TokenService;
  /** Password hashing; the scrypt functions of passwords.ts unless a test counts their calls. */
  passwords?: { hash(password: string): Promise<string>; verify(password: string, stored: string): Promise<boolean> };
}

/** The one spelling of an email: accounts, logins and the per-account login limit use it. */
export function normalizeEmail(email: string): string {
  return email.trim().toLowerCase();
}

/** Accounts: users with roles, their shops, and tokens. */
export function createAccounts({ db, clock, tokens, passwords = { hash: hashPassword, verify: verifyPassword } }: AccountsDeps) {
  async function createUser(email: string, password: string, role: Role): Promise<User> {
    const id = randomUUID();
    const normalized = normalizeEmail(email);
    const rows = await db.query(sql.insertUser, [id, normalized, await passwords.hash(password), role, clock.now()]);
    if (rows.length === 0) throw new AppError('email_taken');
    return { id, email: normalized, role };
  }

  /** Checked when the email is unknown, so that both failures cost one scrypt and timing does not reveal which emails exist. */
  const unknownUserHash = unmatchableHash();

  return {
    /** A new buyer account. */
    register: (email: string, password: string) => createUser(email, password, 'buyer'),

    async login(email: string, password: string): Promise<{ token: string; user: User }> {
      const [row] = await db.query<{ id: string; email: string; password_hash: string; role: Role }>(sql.userByEmail, [normalizeEmail(email)]);
      const matches = await passwords.verify(password, row?.password_hash ?? unknownUserHash);
      if (!row || !matches) throw new AppError('invalid_credentials');
      const user = { id: row.id, email: row.email, role: row.role };
      return { token: tokens.issue({ userId: user.id, role: user.role }), user };
    },

    /** An admin creates a merchant together with the shop it owns. */
    async createMerchant(email: string, password: string, shopName: string): Promise<{ user: User; shop: Shop }> {
      const id = randomUUID();
      const shopId = randomUUID();
      const normalized = normalizeEmail(email);
      const passwordHash = await passwords.hash(password);
      await db.transaction(async (tx) => {
        const rows = await tx.query(sql.insertUser, [id, normalized, passwordHash, 'merchant', clock.now()]);
        if (rows.length === 0) throw new AppError('email_taken');
        await tx.query(sql.insertShop, [shopId, id, shopName, clock.now()]);
      });
      return { user: { id, email: normalized, role: 'merchant' }, shop: { id: shopId, ownerId: id, name: shopName } };
    },

    createAdmin: (email: string, password: string) => createUser(email, password, 'admin'),

    async shopOf(ownerId: string): Promise<Shop | undefined> {
      const [row] = await db.query<{ id: string; owner_id: string; name: string }>(sql.shopByOwner, [ownerId]);
      return row && { id: row.id, ownerId: row.owner_id, name: row.name };
    },

    async findUserByEmail(email: string): Promise<User | undefined> {
      const [row] = await db.query<{ id: string; email: string; role: Role }>(sql.userByEmail, [normalizeEmail(email)]);
      return row && { id: row.id, email: row.email, role: row.role };
    },

    /** The user's email address, if the user exists (tokens can name users that have no account row). */
    async emailOf(userId: string): Promise<string | undefined> {
      const [row] = await db.query<{ email: string }>(sql.emailById, [userId]);
      return row?.email;
    },

    issueToken: (principal: Principal) => tokens.issue(principal),
  };
}

export type Accounts = ReturnType<typeof createAccounts>;
