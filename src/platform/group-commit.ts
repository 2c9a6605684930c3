import { AppError } from './errors.ts';
import { tracer, type TraceCarrier } from './tracing/tracing.ts';

export interface GroupCommitOptions {
  /** Flush when the oldest waiting request is this old… */
  maxWaitMs: number;
  /** …or when this many are waiting, whichever comes first. */
  maxBatch: number;
  /** Requests beyond this many waiting are shed with 503 instead of queueing forever. */
  maxQueue: number;
}

/** One result per request of the batch, in order: a value, or an error for that request alone. */
export type BatchOutcome<R> = { ok: true; value: R } | { ok: false; error: unknown };

interface Pending<T, R> {
  request: T;
  resolve: (value: R) => void;
  reject: (error: unknown) => void;
  /** The submitter's span (tracing on): the batch span links to it. */
  trace: TraceCarrier | undefined;
}

/**
 * Group commit: requests arriving within a few milliseconds share one transaction. Each caller's
 * promise settles only after that transaction committed (or failed), so a resolved promise means
 * durable. One batch is in flight at a time; the next one gathers while it commits.
 */
export class GroupCommitter<T, R> {
  #queue: Array<Pending<T, R>> = [];
  #timer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> | undefined;
  #closed = false;

  private readonly commitBatch: (requests: readonly T[]) => Promise<Array<BatchOutcome<R>>>;
  private readonly opts: GroupCommitOptions;

  constructor(
    commitBatch: (requests: readonly T[]) => Promise<Array<BatchOutcome<R>>>,
    opts: GroupCommitOptions,
  ) {
    this.commitBatch = commitBatch;
    this.opts = opts;
  }

  /** Requests are waiting for, or inside, a commit. */
  get busy(): boolean {
    return this.#queue.length > 0 || this.#flushing !== undefined;
  }

  /**
   * Queues a request. Throws at once (not a rejected promise) when the request was not queued —
   * shutting down, or the queue is full — so the caller knows to undo what it did before.
   */
  submit(request: T): Promise<R> {
    if (this.#closed) throw new AppError('unavailable', 'Shutting down.', { retryAfterS: 1 });
    if (this.#queue.length >= this.opts.maxQueue) throw new AppError('overloaded', undefined, { retryAfterS: 1 });
    return new Promise<R>((resolve, reject) => {
      this.#queue.push({ request, resolve, reject, trace: tracer.current() });
      if (this.#queue.length >= this.opts.maxBatch) this.#kick(0);
      else if (!this.#timer) this.#kick(this.opts.maxWaitMs);
    });
  }

  /** Commits what is waiting, then refuses new work. */
  async close(): Promise<void> {
    this.#closed = true;
    while (this.#queue.length > 0 || this.#flushing) {
      if (this.#flushing) await this.#flushing;
      else await this.#flush();
    }
  }

  #kick(delayMs: number): void {
    if (this.#flushing) return; // the running flush reschedules when it ends
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => void this.#flush(), delayMs);
  }

  async #flush(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#flushing || this.#queue.length === 0) return;
    const batch = this.#queue.splice(0, this.opts.maxBatch);
    const run = this.#commit(batch);
    this.#flushing = run;
    await run;
    this.#flushing = undefined;
    if (this.#queue.length > 0) this.#kick(this.#queue.length >= this.opts.maxBatch ? 0 : this.opts.maxWaitMs);
  }

  /**
   * One batch's transaction. Traced as a span of its own trace (it serves many requests, each in
   * its own trace) with a link to each request's span; what the batch writes for one request
   * continues that request's trace (see `trace` on OutgoingEvent).
   */
  #commit(batch: Array<Pending<T, R>>): Promise<void> {
    if (!tracer.enabled) return this.#commitUntraced(batch);
    return tracer.run('group_commit', { parent: null, links: batch.map((p) => p.trace), attributes: { 'flashsale.batch.size': batch.length } }, () => this.#commitUntraced(batch));
  }

  async #commitUntraced(batch: Array<Pending<T, R>>): Promise<void> {
    try {
      const outcomes = await this.commitBatch(batch.map((p) => p.request));
      batch.forEach((pending, i) => {
        const outcome = outcomes[i];
        if (!outcome) pending.reject(new Error('group commit returned no outcome'));
        else if (outcome.ok) pending.resolve(outcome.value);
        else pending.reject(outcome.error);
      });
    } catch (error) {
      for (const pending of batch) pending.reject(error);
    }
  }
}
