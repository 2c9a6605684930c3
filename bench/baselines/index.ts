import type { Baseline } from './baseline.ts';
import { batched } from './batched.ts';
import { checkThenUpdate } from './check-then-update.ts';
import { guardedUpdate } from './guarded-update.ts';
import { redisPrededuct } from './redis-prededuct.ts';
import { serializedConsumer } from './serialized-consumer.ts';

export type { Baseline, BaselineAudit, BaselineEnv, BenchItem, RunningBaseline } from './baseline.ts';

/** The seeds' approaches, in the order the bench reports them. */
export const BASELINES: readonly Baseline[] = [guardedUpdate, checkThenUpdate, serializedConsumer, batched, redisPrededuct];
