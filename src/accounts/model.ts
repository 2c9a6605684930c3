import type { Role } from '../platform/tokens.ts';

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

/** The one spelling of an email: accounts, logins and the per-account login limit use it. */
export function normalizeEmail(email: string): string {
  return email.trim().toLowerCase();
}
