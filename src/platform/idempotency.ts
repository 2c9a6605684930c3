import { createHash } from 'node:crypto';
import type { Clock } from './clock.ts';
import type { Database, Queryable, Tx } from './database/database.ts';

/** A request's claim on an Idempotency-Key: who sent it, the key, and a hash of what was asked. */
export interface IdempotencyClaim {
  scope: string;
  key: string;
  hash: string;
}

export interface StoredResponse {
  status: number;
  body: unknown;
}

/** status 0 marks a key claimed by a request that has not finished (possibly in another process). */
export interface StoredKey extends StoredResponse {
  hash: string;
}

export function requestHash(parts: readonly unknown[]): string {
  return createHash('sha256').update(JSON.stringify(parts)).digest('base64url');
}

/**
 * Idempotency keys, stored in the database. Hot-path use cases claim and complete their keys in
 * the same transaction as their effect (so a key can never map to a second order); other routes
 * store the response right after their effect committed.
 */
export class IdempotencyStore {
  private readonly db: Database;
  private readonly clock: Clock;

  constructor(db: Database, clock: Clock) {
    this.db = db;
    this.clock = clock;
  }

  async lookup(scope: string, key: string): Promise<StoredKey | undefined> {
    const [row] = await this.db.query<{ request_hash: string; status_code: number; response: unknown }>(
      'select request_hash, status_code, response from idempotency_keys where user_key = $1 and key = $2', [scope, key]);
    return row && { hash: row.request_hash, status: row.status_code, body: row.response };
  }

  /** Claims keys inside a transaction; true where this transaction got the key. Undefined entries pass. */
  async claim(tx: Queryable, claims: ReadonlyArray<IdempotencyClaim | undefined>): Promise<boolean[]> {
    const present = claims.filter((c): c is IdempotencyClaim => c !== undefined);
    if (present.length === 0) return claims.map(() => true);
    const rows = await tx.query<{ user_key: string; key: string }>(
      `insert into idempotency_keys (user_key, key, request_hash, status_code, response, created_at)
       select s, k, h, 0, 'null'::jsonb, $4 from unnest($1::text[], $2::text[], $3::text[]) as c(s, k, h)
       on conflict do nothing returning user_key, key`,
      [present.map((c) => c.scope), present.map((c) => c.key), present.map((c) => c.hash), this.clock.now()],
    );
    const won = new Set(rows.map((r) => `${r.user_key}\u0000${r.key}`));
    const seen = new Set<string>();
    return claims.map((c) => {
      if (!c) return true;
      const id = `${c.scope}\u0000${c.key}`;
      if (!won.has(id) || seen.has(id)) return false;
      seen.add(id);
      return true;
    });
  }

  /** Stores the answers of claimed keys; sent with the transaction's other writes (`Tx.send`). */
  complete(tx: Tx, responses: ReadonlyArray<{ claim: IdempotencyClaim; status: number; body: unknown }>): void {
    if (responses.length === 0) return;
    tx.send(
      `update idempotency_keys i set status_code = r.status, response = r.body::jsonb
         from unnest($1::text[], $2::text[], $3::int[], $4::text[]) as r(s, k, status, body)
        where i.user_key = r.s and i.key = r.k`,
      [responses.map((r) => r.claim.scope), responses.map((r) => r.claim.key), responses.map((r) => r.status), responses.map((r) => JSON.stringify(r.body))],
    );
  }

  /** Frees keys whose request was refused, so the key may be used again. */
  release(tx: Tx, claims: readonly IdempotencyClaim[]): void {
    if (claims.length === 0) return;
    tx.send(
      `delete from idempotency_keys i using unnest($1::text[], $2::text[]) as c(s, k)
        where i.user_key = c.s and i.key = c.k and i.status_code = 0`,
      [claims.map((c) => c.scope), claims.map((c) => c.key)],
    );
  }

  /** Stores a finished response outside any use-case transaction. */
  async store(claim: IdempotencyClaim, response: StoredResponse): Promise<void> {
    await this.db.query(
      `insert into idempotency_keys (user_key, key, request_hash, status_code, response, created_at)
       values ($1, $2, $3, $4, $5::jsonb, $6) on conflict do nothing`,
      [claim.scope, claim.key, claim.hash, response.status, JSON.stringify(response.body), this.clock.now()],
    );
  }
}
