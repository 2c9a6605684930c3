import type { Clock } from '../platform/clock.ts';
import type { Database } from '../platform/database/index.ts';
import type { Principal, Role, TokenService } from '../platform/tokens.ts';
import type { AccountsContext, Passwords } from './context.ts';
import { normalizeEmail, type Shop, type User } from './model.ts';
import { hashPassword, verifyPassword } from './passwords.ts';
import { createMerchant, createUser } from './registration.ts';
import { createLogin } from './login.ts';
import * as sql from './sql.ts';
import { toE164 } from './phone.ts';
import { AppError } from '../platform/errors.ts';

export type { Passwords } from './context.ts';
export type { Shop, User } from './model.ts';
export { normalizeEmail } from './model.ts';

/** Accounts: users with roles, their shops, and tokens. */
export interface Accounts {
  /** A new buyer account. */
  register(email: string, password: string): Promise<User>;
  /** Email and password for a bearer token; a wrong password and an unknown email cost the same. */
  login(email: string, password: string): Promise<{ token: string; user: User }>;
  /** An admin creates a merchant together with the shop it owns. */
  createMerchant(email: string, password: string, shopName: string): Promise<{ user: User; shop: Shop }>;
  /** A new admin account (no route makes one: the demo seed does). */
  createAdmin(email: string, password: string): Promise<User>;
  /** The shop a merchant owns, if any. */
  shopOf(ownerId: string): Promise<Shop | undefined>;
  /** The account of an email, in any spelling of it. */
  findUserByEmail(email: string): Promise<User | undefined>;
  /** The merchant who owns a shop. */
  ownerOfShop(shopId: string): Promise<string | undefined>;
  /** The buyer's phone number (E.164) if they opted in to SMS notices. */
  phoneOf(userId: string): Promise<string | undefined>;
  /** The phone numbers of those of these users who opted in to SMS, by user id, in one query. */
  phonesOf(userIds: readonly string[]): Promise<Map<string, string>>;
  /** Opts a buyer in to SMS notices with a phone number (any international spelling; stored as E.164), or out with null. */
  setPhone(userId: string, phone: string | null): Promise<string | null>;
  /** The email addresses of those of these users that exist, by user id, in one query (tokens can name users that have no account row). */
  emailsOf(userIds: readonly string[]): Promise<Map<string, string>>;
  /** A token for a principal. */
  issueToken(principal: Principal): string;
}

export interface AccountsDeps {
  db: Database;
  clock: Clock;
  tokens: TokenService;
  /** Password hashing; the scrypt functions of passwords.ts unless a test counts their calls. */
  passwords?: Passwords;
}

/** Wires the accounts use cases (registration.ts, login.ts) and the look-ups over one shared context. */
export function createAccounts({ passwords = { hash: hashPassword, verify: verifyPassword }, ...deps }: AccountsDeps): Accounts {
  const ctx: AccountsContext = { ...deps, passwords };
  const { db, tokens } = deps;
  return {
    register: (email, password) => createUser(ctx, email, password, 'buyer'),
    login: createLogin(ctx),
    createMerchant: (email, password, shopName) => createMerchant(ctx, email, password, shopName),
    createAdmin: (email, password) => createUser(ctx, email, password, 'admin'),
    async shopOf(ownerId) {
      const [row] = await db.query<{ id: string; owner_id: string; name: string }>(sql.shopByOwner, [ownerId]);
      return row && { id: row.id, ownerId: row.owner_id, name: row.name };
    },
    async findUserByEmail(email) {
      const [row] = await db.query<{ id: string; email: string; role: Role }>(sql.userByEmail, [normalizeEmail(email)]);
      return row && { id: row.id, email: row.email, role: row.role };
    },
    async emailsOf(userIds) {
      if (userIds.length === 0) return new Map();
      const rows = await db.query<{ id: string; email: string }>(sql.emailsByIds, [userIds]);
      return new Map(rows.map((r) => [r.id, r.email]));
    },
    async ownerOfShop(shopId) {
      const [row] = await db.query<{ owner_id: string }>(sql.ownerOfShop, [shopId]);
      return row?.owner_id;
    },
    async phoneOf(userId) {
      const [row] = await db.query<{ phone: string | null }>(sql.phoneById, [userId]);
      return row?.phone ?? undefined;
    },
    async phonesOf(userIds) {
      if (userIds.length === 0) return new Map();
      const rows = await db.query<{ id: string; phone: string }>(sql.phonesByIds, [userIds]);
      return new Map(rows.map((r) => [r.id, r.phone]));
    },
    async setPhone(userId, phone) {
      const e164 = phone === null ? null : toE164(phone);
      if ((await db.query(sql.setPhone, [userId, e164])).length === 0) throw new AppError('not_found', 'No such buyer account.');
      return e164;
    },
    issueToken: (principal) => tokens.issue(principal),
  };
}
