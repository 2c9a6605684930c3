import { AppError } from '../errors.ts';

/**
 * The admission gate: one atomic decision per purchase attempt, before the database sees it.
 * It may only ever be *more* conservative than the database (which re-checks every hold), so a
 * wrong gate can cost a sale but never oversell.
 */
export interface GateItem {
  saleItemId: string;
  available: number;
  perUserLimit: number;
  /** Epoch ms; the item is on sale in [startsAt, endsAt). */
  startsAt: number;
  endsAt: number;
}

export interface GateQuota {
  saleItemId: string;
  userId: string;
  /** Units this user holds or bought. */
  quantity: number;
}

export interface GateLine {
  saleItemId: string;
  quantity: number;
}

/** New terms for an item the gate holds (sale management): quotas are kept. */
export interface GateAdjustment {
  saleItemId: string;
  /** Units added to (positive) or taken from (negative) `available`. */
  availableDelta: number;
  perUserLimit: number;
  /** Epoch ms; the item is on sale in [startsAt, endsAt). */
  startsAt: number;
  endsAt: number;
}

export type RefusalReason = 'sold_out' | 'limit_exceeded' | 'sale_not_active' | 'unknown_item';

export type Admission =
  | { ok: true; /** available after the decision, per line */ remaining: number[] }
  | { ok: false; reason: RefusalReason; saleItemId: string; remaining: number };

export interface StockGate {
  readonly kind: 'memory' | 'redis';
  /** Replaces everything the gate knows about these items (start-up rebuild, new sale). */
  load(items: readonly GateItem[], quotas: readonly GateQuota[]): Promise<void>;
  /** All lines or none: decrements available and the user's quota atomically. */
  admit(userId: string, lines: readonly GateLine[], nowMs: number): Promise<Admission>;
  /** Gives units back (refused by the database, cancelled, expired). */
  release(userId: string, lines: readonly GateLine[]): Promise<void>;
  /**
   * Changes items' terms in place, each atomically: `available` moves by the delta (so admissions in
   * flight stay counted), the limit and window are replaced, the quotas are kept. An item the gate
   * does not hold is skipped (a rebuild loads it from the database). Stock added, a sale edited or
   * cancelled.
   */
  adjust(changes: readonly GateAdjustment[]): Promise<void>;
  /** Forgets items (taken out of a sale before it started). */
  remove(saleItemIds: readonly string[]): Promise<void>;
  available(saleItemId: string): Promise<number | undefined>;
  quota(saleItemId: string, userId: string): Promise<number>;
  /** False until loaded; a gate that lost its state must not admit anyone. */
  ready(): Promise<boolean>;
  /**
   * Loads the gate at process start through `rebuild` (which loads it from the database). A local
   * gate runs it now. A shared gate runs it only when its state is missing — now, or whenever it is
   * lost later — so that processes starting together never overwrite each other's live counters.
   */
  open(rebuild: () => Promise<void>): Promise<void>;
  /** Releases connections (adapters that hold any). */
  close?(): Promise<void>;
}

/**
 * The gate cannot decide: its shared state was lost and is being rebuilt, or its store is
 * unreachable. Thrown by `admit` instead of admitting on an empty gate; nobody is admitted, and the
 * HTTP edge answers 503 with Retry-After like any `unavailable` AppError.
 */
export class GateUnavailableError extends AppError {
  override name = 'GateUnavailableError';

  constructor(message = 'The stock gate is being rebuilt; retry shortly.', options: { cause?: unknown } = {}) {
    super('unavailable', message, { retryAfterS: 1, cause: options.cause });
  }
}
