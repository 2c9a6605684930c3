/**
 * The rush's finish line and event backlog. Every buyer's attempt should succeed, so what counts is
 * how soon every accepted order is in the database — whether the target writes before it answers
 * (flashsale, guarded-update, batched, serialized-consumer) or after (redis-prededuct answers once
 * its queue has the message) — and how soon the events those orders raised are all handled.
 *
 * While the load runs and after it, the target is sampled every SAMPLE_MS: orders in its database
 * and, for flashsale, its event backlog. When the load ends, the orders are polled every
 * SETTLE_POLL_MS until every accepted order is there, and flashsale's quiet audit every
 * QUIET_POLL_MS, once a sample finds no event waiting, until it is clean.
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { LoadResult } from './load.ts';
import type { BacklogSample, RushFigures } from './summary.ts';
import type { RunningTarget } from './targets.ts';

export const SAMPLE_MS = 250;
const SETTLE_POLL_MS = 25;
const QUIET_POLL_MS = 250;
/** How long the rush waits, after the last answer, for the finish line and for the quiet audit. */
export const WAIT_LIMIT_MS = 180_000;

interface Sample {
  /** performance.now() when the order count was read. */
  at: number;
  orders: number;
  outbox: number | null;
  deliveries: number | null;
}

const isAccepted = (status: number) => status >= 200 && status < 300;

export class RushWatch {
  readonly #target: RunningTarget;
  readonly #samples: Sample[] = [];
  #stopped = false;
  #lastError: unknown;
  readonly #loop: Promise<void>;

  /** Starts sampling `target` now: create it right before the load starts. */
  constructor(target: RunningTarget) {
    this.#target = target;
    this.#loop = this.#run();
  }

  async #sample(): Promise<Sample> {
    const orders = await this.#target.durableOrders();
    const at = performance.now();
    const backlog = this.#target.backlog ? await this.#target.backlog() : undefined;
    const sample = { at, orders, outbox: backlog?.outbox ?? null, deliveries: backlog?.deliveries ?? null };
    this.#samples.push(sample);
    return sample;
  }

  async #run(): Promise<void> {
    while (!this.#stopped) {
      try {
        await this.#sample();
      } catch (error) {
        this.#lastError = error; // a sample the server could not answer in time: the next one may
      }
      if (!this.#stopped) await sleep(SAMPLE_MS);
    }
  }

  /** Stops sampling (after a failure; `finish` stops it itself). */
  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#loop;
  }

  /** After the load: waits for the finish line and (flashsale) the quiet audit, then stops sampling. */
  async finish(load: LoadResult): Promise<RushFigures> {
    const target = this.#target;
    const accepted = load.records.filter((r) => isAccepted(r.status));
    const firstAt = load.t0 + load.records.reduce((min, r) => Math.min(min, r.startMs), Infinity);
    const lastAnswerAt = load.t0 + load.records.reduce((max, r) => Math.max(max, r.endMs), 0);
    const lastAcceptedAt = load.t0 + accepted.reduce((max, r) => Math.max(max, r.endMs), 0);
    const deadline = performance.now() + WAIT_LIMIT_MS;

    const settled = async (): Promise<number | null> => {
      if (accepted.length === 0) return null;
      // A sample taken during the load may already have seen every order written.
      const early = this.#samples.find((s) => s.orders >= accepted.length);
      if (early) return early.at;
      while (performance.now() < deadline) {
        try {
          const orders = await target.durableOrders();
          if (orders >= accepted.length) return performance.now();
        } catch (error) {
          this.#lastError = error;
        }
        await sleep(SETTLE_POLL_MS);
      }
      return null;
    };
    const quiet = async (): Promise<{ at: number | null; problems: string[] }> => {
      if (!target.quietAudit) return { at: null, problems: [] };
      let problems: string[] = [];
      while (performance.now() < deadline) {
        // The audit is heavy, and on the target's own database: asked only once a sample taken after
        // the last answer finds nothing waiting, so that polling it does not slow the drain it waits for.
        const latest = this.#samples.at(-1);
        if (target.backlog && !(latest && latest.at > lastAnswerAt && latest.outbox === 0 && latest.deliveries === 0)) {
          if (latest) problems = [`events waiting: ${latest.outbox} outbox rows, ${latest.deliveries} deliveries`];
          await sleep(QUIET_POLL_MS);
          continue;
        }
        try {
          const verdict = await target.quietAudit();
          // The answer's arrival: the audit found everything handled no later than that.
          if (verdict.clean) return { at: performance.now(), problems: [] };
          problems = verdict.problems;
        } catch (error) {
          problems = [error instanceof Error ? error.message : String(error)];
        }
        await sleep(QUIET_POLL_MS);
      }
      return { at: null, problems };
    };

    const [settledAt, quietAt] = await Promise.all([settled(), quiet()]);
    await this.stop();
    const last = await this.#sample().catch(() => undefined); // the backlog as the run ends
    if (this.#samples.length === 0) throw new Error(`the rush could not sample ${target.url}: ${String(this.#lastError)}`);
    // Orders are durable when both are true: the last accepted answer came, and the database has them all.
    const finishedAt = settledAt === null ? null : Math.max(lastAcceptedAt, settledAt);
    const settledMs = finishedAt === null ? null : finishedAt - firstAt;
    return {
      settled_ms: settledMs === null ? null : Math.round(settledMs),
      settled_orders_per_s: settledMs === null || settledMs <= 0 ? null : Math.round(accepted.length / (settledMs / 1000)),
      durable_orders: (last ?? this.#samples.at(-1)!).orders,
      quiet_clean_ms: quietAt.at === null ? null : Math.round(Math.max(0, quietAt.at - lastAnswerAt)),
      quiet_problems: quietAt.problems,
      backlog: this.#samples.map((s): BacklogSample => ({ t_ms: Math.max(0, Math.round(s.at - firstAt)), orders: s.orders, outbox: s.outbox, deliveries: s.deliveries })),
    };
  }
}
