import type { Logger } from '../platform/logger.ts';
import type { PspCore } from './core.ts';
import type { Knobs } from './knobs.ts';
import type { Op, PspStore } from './state.ts';
import type { WebhookDispatcher } from './webhooks.ts';

/** One running simulator as its routes see it: the state, the operations, the webhook sender and the knobs in force. */
export interface Simulator {
  readonly store: PspStore;
  readonly core: PspCore;
  readonly dispatcher: WebhookDispatcher;
  readonly log: Logger;
  /** Uniform in [0, 1): the same source the core draws declines, drops and duplicates from. */
  readonly random: () => number;
  /** Base of the hosted page links. */
  readonly publicUrl: () => string;
  /** Aborted when the server closes: hanging (latency / timeout) requests answer at once. */
  readonly closing: AbortSignal;
  /** The fault-injection settings in force; POST /_sim/knobs replaces them. */
  knobs: Knobs;
}

/** Journals the changes in one batch, then sends the events among them. */
export function recordAndSend(sim: Simulator, ops: Op[]): void {
  sim.store.record(ops);
  for (const op of ops) if (op.op === 'event') sim.dispatcher.schedule(op.event, op.copies);
}
