import { randomUUID } from 'node:crypto';
import { AppError } from '../platform/errors.ts';
import type { Role } from '../platform/tokens.ts';
import type { AccountsContext } from './context.ts';
import { normalizeEmail, type Shop, type User } from './model.ts';
import * as sql from './sql.ts';

/** A new account (a buyer registering, or an admin); an email is taken once. */
export async function createUser({ db, clock, passwords }: AccountsContext, email: string, password: string, role: Role): Promise<User> {
  const id = randomUUID();
  const normalized = normalizeEmail(email);
  const rows = await db.query(sql.insertUser, [id, normalized, await passwords.hash(password), role, clock.now()]);
  if (rows.length === 0) throw new AppError('email_taken');
  return { id, email: normalized, role };
}

/** An admin creates a merchant together with the shop it owns, in one transaction. */
export async function createMerchant({ db, clock, passwords }: AccountsContext, email: string, password: string, shopName: string): Promise<{ user: User; shop: Shop }> {
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
}
