import { closeSync, existsSync, ftruncateSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync, appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { lockDirectory } from '../platform/pid-lock.ts';

/** The simulator's objects, shaped like Stripe's (a subset of their fields). */
export type IntentStatus = 'requires_payment_method' | 'requires_confirmation' | 'requires_action' | 'processing' | 'succeeded' | 'canceled';

export interface PaymentError {
  type: 'card_error';
  code: 'card_declined';
  decline_code: string;
  message: string;
  payment_method: { id: string; object: 'payment_method' } | null;
}

export interface IntentObject {
  id: string;
  object: 'payment_intent';
  amount: number;
  amount_received: number;
  currency: string;
  status: IntentStatus;
  client_secret: string;
  metadata: Record<string, string>;
  description: string | null;
  created: number;
  canceled_at: number | null;
  cancellation_reason: string | null;
  capture_method: 'automatic';
  confirmation_method: 'automatic';
  payment_method: string | null;
  payment_method_types: string[];
  last_payment_error: PaymentError | null;
  next_action: { type: 'redirect_to_url'; redirect_to_url: { url: string; return_url: string | null } } | null;
  livemode: false;
}

export interface RefundObject {
  id: string;
  object: 'refund';
  amount: number;
  currency: string;
  payment_intent: string;
  status: 'succeeded';
  reason: string | null;
  metadata: Record<string, string>;
  created: number;
}

export type EventType = 'payment_intent.succeeded' | 'payment_intent.payment_failed' | 'payment_intent.canceled' | 'charge.refunded';

export interface EventObject {
  id: string;
  object: 'event';
  api_version: string;
  type: EventType;
  created: number;
  livemode: false;
  pending_webhooks: number;
  request: { id: string | null; idempotency_key: string | null };
  data: { object: IntentObject | RefundObject };
}

export interface StoredResponse {
  hash: string;
  status: number;
  body: unknown;
}

/** What happened to an event's deliveries so far. */
export interface Delivery {
  /** How many deliveries are planned: 0 when dropped, 2 when duplicated, +1 per resend. */
  copies: number;
  delivered: number;
  failed: number;
  attempts: number;
  lastStatus: number | null;
  lastError: string | null;
}

/** One state change. Each request's changes are one journal line, so they survive a crash together or not at all. */
export type Op =
  | { op: 'intent'; intent: IntentObject }
  | { op: 'refund'; refund: RefundObject }
  | { op: 'event'; event: EventObject; copies: number }
  | { op: 'resend'; eventId: string }
  | { op: 'delivery'; eventId: string; delivered: boolean; attempts: number; status: number | null; error: string | null }
  | { op: 'idempotency'; key: string; response: StoredResponse };

export interface Journal {
  /** Every batch written so far, oldest first. */
  replay(): Op[][];
  /** Writes one batch durably (for a process crash) before returning. */
  append(ops: Op[]): void;
  close(): void;
}

export class MemoryJournal implements Journal {
  replay(): Op[][] {
    return [];
  }
  append(): void {}
  close(): void {}
}

/**
 * An append-only JSON-lines file, one batch per line. A torn last line (a crash mid-write) is cut
 * off at open; a damaged line anywhere else stops the start with its line number.
 */
export class FileJournal implements Journal {
  readonly path: string;
  #fd: number | undefined;
  #unlock: () => void;

  constructor(dir: string) {
    mkdirSync(dir, { recursive: true });
    // One simulator per journal directory: a second process appending to the same file would interleave lines.
    this.#unlock = lockDirectory(dir, 'psp.pid', 'the psp journal', 'PSP_DATA_DIR');
    this.path = join(dir, 'journal.jsonl');
    try {
      this.#fd = openSync(this.path, 'a+');
    } catch (error) {
      this.#unlock();
      throw error;
    }
  }

  replay(): Op[][] {
    if (!existsSync(this.path)) return [];
    const text = readFileSync(this.path, 'utf8');
    const lines = text.split('\n');
    const batches: Op[][] = [];
    let offset = 0;
    for (const [i, line] of lines.entries()) {
      const last = i === lines.length - 1;
      if (line.trim() !== '') {
        try {
          const parsed = JSON.parse(line) as { ops?: Op[] };
          if (!Array.isArray(parsed.ops)) throw new Error('no ops');
          batches.push(parsed.ops);
        } catch (error) {
          if (!last) throw new Error(`psp journal ${this.path} is damaged at line ${i + 1}: ${(error as Error).message}`);
          ftruncateSync(this.#fd!, Buffer.byteLength(text.slice(0, offset)));
          break;
        }
      }
      offset += line.length + 1;
    }
    return batches;
  }

  append(ops: Op[]): void {
    if (this.#fd === undefined) throw new Error('psp journal is closed');
    appendFileSync(this.#fd, `${JSON.stringify({ at: new Date().toISOString(), ops })}\n`);
  }

  close(): void {
    if (this.#fd !== undefined) closeSync(this.#fd);
    this.#fd = undefined;
    this.#unlock();
  }
}

/** The simulator's state: replayed from the journal at start, changed only through `commit`. */
export class PspStore {
  readonly intents = new Map<string, IntentObject>();
  readonly refunds = new Map<string, RefundObject>();
  readonly events: EventObject[] = [];
  readonly eventsById = new Map<string, EventObject>();
  readonly deliveries = new Map<string, Delivery>();
  readonly idempotency = new Map<string, StoredResponse>();

  private readonly journal: Journal;

  constructor(journal: Journal) {
    this.journal = journal;
    for (const batch of journal.replay()) for (const op of batch) this.#apply(op);
  }

  /** Journals the batch, then applies it: memory never holds a change the journal lacks. */
  record(ops: Op[]): void {
    if (ops.length === 0) return;
    this.journal.append(ops);
    for (const op of ops) this.#apply(op);
  }

  refundedAmount(intentId: string): number {
    let total = 0;
    for (const refund of this.refunds.values()) if (refund.payment_intent === intentId) total += refund.amount;
    return total;
  }

  /** Deliveries planned but not finished (for a restart to resume them). */
  pendingCopies(eventId: string): number {
    const d = this.deliveries.get(eventId);
    return d ? Math.max(0, d.copies - d.delivered - d.failed) : 0;
  }

  close(): void {
    this.journal.close();
  }

  #apply(op: Op): void {
    switch (op.op) {
      case 'intent':
        this.intents.set(op.intent.id, op.intent);
        break;
      case 'refund':
        this.refunds.set(op.refund.id, op.refund);
        break;
      case 'event':
        if (!this.eventsById.has(op.event.id)) this.events.push(op.event);
        this.eventsById.set(op.event.id, op.event);
        this.deliveries.set(op.event.id, { copies: op.copies, delivered: 0, failed: 0, attempts: 0, lastStatus: null, lastError: null });
        break;
      case 'resend': {
        const d = this.deliveries.get(op.eventId);
        if (d) d.copies += 1;
        break;
      }
      case 'delivery': {
        const d = this.deliveries.get(op.eventId);
        if (!d) break;
        if (op.delivered) d.delivered += 1;
        else d.failed += 1;
        d.attempts += op.attempts;
        d.lastStatus = op.status;
        d.lastError = op.error;
        break;
      }
      case 'idempotency':
        this.idempotency.set(op.key, op.response);
        break;
    }
  }
}
