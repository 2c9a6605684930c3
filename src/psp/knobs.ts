import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import type { Config } from '../platform/config.ts';

const Rate = Type.Number({ minimum: 0, maximum: 1 });
const Ms = Type.Integer({ minimum: 0, maximum: 3_600_000 });

/** The simulator's fault-injection settings. Defaults come from config; POST /_sim/knobs changes them at runtime. */
export const KnobsSchema = Type.Object({
  /** Added to every /v1 call before it is handled. */
  latencyMs: Ms,
  /** Probability that a confirm without an explicit payment method (or the hosted Pay button) is declined. */
  declineRate: Rate,
  /** Probability that a /v1 call is handled but its answer is withheld for `timeoutMs`, then 504. */
  timeoutRate: Rate,
  /** How long a "timed out" call hangs before its 504; longer than any sane client timeout. */
  timeoutMs: Ms,
  /** Probability that an event is never delivered. */
  webhookDropRate: Rate,
  /** Probability that an event is delivered twice (same event id, each delivery signed on its own). */
  webhookDuplicateRate: Rate,
  /** Added before an event's first delivery attempt. */
  webhookDelayMs: Ms,
  /** Hold events for `webhookReorderWindowMs`, then deliver the batch newest first. */
  webhookReorder: Type.Boolean(),
  webhookReorderWindowMs: Ms,
}, { additionalProperties: false });

export type Knobs = Static<typeof KnobsSchema>;

const KnobsPatch = Type.Partial(KnobsSchema, { additionalProperties: false });

export type PspKnobConfig = Pick<Config,
  'PSP_LATENCY_MS' | 'PSP_DECLINE_RATE' | 'PSP_TIMEOUT_RATE' | 'PSP_WEBHOOK_DROP_RATE' | 'PSP_WEBHOOK_DUPLICATE_RATE' | 'PSP_WEBHOOK_DELAY_MS' | 'PSP_WEBHOOK_REORDER'>;

export function defaultKnobs(config: PspKnobConfig): Knobs {
  return {
    latencyMs: config.PSP_LATENCY_MS,
    declineRate: config.PSP_DECLINE_RATE,
    timeoutRate: config.PSP_TIMEOUT_RATE,
    timeoutMs: 30_000,
    webhookDropRate: config.PSP_WEBHOOK_DROP_RATE,
    webhookDuplicateRate: config.PSP_WEBHOOK_DUPLICATE_RATE,
    webhookDelayMs: config.PSP_WEBHOOK_DELAY_MS,
    webhookReorder: config.PSP_WEBHOOK_REORDER,
    webhookReorderWindowMs: 250,
  };
}

/** Validates a partial update; returns the error messages, or the merged knobs. */
export function patchKnobs(current: Knobs, patch: unknown): { knobs: Knobs } | { errors: string[] } {
  if (!Value.Check(KnobsPatch, patch)) {
    return { errors: [...Value.Errors(KnobsPatch, patch)].map((e) => `${e.path.slice(1) || '(body)'}: ${e.message}`) };
  }
  return { knobs: { ...current, ...patch } };
}

/** A small seeded PRNG (mulberry32): the same seed gives the same sequence of declines, drops and duplicates. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}
