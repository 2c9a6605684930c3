import type { RedisClient } from '../platform/redis.ts';

/** Whose attempts a reading counts: every API process of the deployment, or only the one asked. */
export type AttemptsScope = 'all-processes' | 'this-process';

/**
 * Purchase attempts per sale and outcome (`accepted` or the refusal's code): what the operations
 * dashboard turns into attempts/s per sale. Counted in memory on the purchase path (no I/O there).
 * With Redis, each process adds what it counted to `<prefix>:sale-attempts:{<saleId>}` (a hash by
 * outcome) once per `flushMs`, and a reading is that sum over every API process plus what this one
 * has not yet added: the sale's total whichever API the dashboard asks (at most `flushMs` behind for
 * the others; a process that dies loses its last unflushed second, a display's loss, never an
 * order's). Without Redis there is only one API process (the memory gate cannot be shared), and
 * its counts are the sale's. Prometheus gets the totals without a sale label
 * (flashsale_purchase_attempts_total): a label per sale would grow its series with every sale.
 * Only items the catalog knows are counted, and at most `maxSales` sales are kept in memory (the
 * oldest forgotten first), so made-up ids cannot grow it.
 */
export interface SaleAttempts {
  count(saleItemId: string, outcome: string): void;
  of(saleId: string): Promise<{ attempts: Record<string, number>; scope: AttemptsScope }>;
  close(): void;
}

const KEEP_S = 7 * 24 * 3600;

export function saleAttempts(
  saleOf: (saleItemId: string) => string | undefined,
  { redis, prefix = 'flashsale', flushMs = 1000, maxSales = 1000 }: { redis?: () => RedisClient | undefined; prefix?: string; flushMs?: number; maxSales?: number } = {},
): SaleAttempts {
  /** Every count of this process (without Redis, the answer). */
  const bySale = new Map<string, Record<string, number>>();
  /** Counts not yet added to Redis. */
  let unflushed = new Map<string, Record<string, number>>();
  // The sale id as the hash tag: on a Redis Cluster a pipeline must stay in one slot, so each sale's is its own.
  const key = (saleId: string) => `${prefix}:sale-attempts:{${saleId}}`;
  const add = (into: Map<string, Record<string, number>>, saleId: string, outcome: string, n: number) => {
    let tally = into.get(saleId);
    if (!tally) {
      if (into.size >= maxSales) into.delete(into.keys().next().value!);
      tally = {};
      into.set(saleId, tally);
    }
    tally[outcome] = (tally[outcome] ?? 0) + n;
  };

  let flushing = false;
  async function flush(client: RedisClient): Promise<void> {
    if (flushing || unflushed.size === 0) return;
    flushing = true;
    const batch = unflushed;
    unflushed = new Map();
    const results = await Promise.allSettled([...batch].map(async ([saleId, tally]) => {
      const pipeline = client.pipeline();
      for (const [outcome, n] of Object.entries(tally)) pipeline.hincrby(key(saleId), outcome, n);
      pipeline.expire(key(saleId), KEEP_S);
      const replies = await pipeline.exec();
      if (replies?.some(([error]) => error)) throw new Error('sale-attempts flush failed');
    }));
    // Redis unreachable: a sale's counts wait for the next round (a partly applied pipeline may count some twice: a display's error).
    [...batch].forEach(([saleId, tally], i) => {
      if (results[i]!.status === 'rejected') for (const [outcome, n] of Object.entries(tally)) add(unflushed, saleId, outcome, n);
    });
    flushing = false;
  }

  let timer: NodeJS.Timeout | undefined;
  if (redis) {
    timer = setInterval(() => {
      const client = redis();
      if (client) void flush(client);
    }, flushMs);
    timer.unref();
  }

  return {
    count(saleItemId, outcome) {
      const saleId = saleOf(saleItemId.toLowerCase());
      if (saleId === undefined) return;
      add(bySale, saleId, outcome, 1);
      if (redis) add(unflushed, saleId, outcome, 1);
    },
    async of(saleId) {
      const local = { ...bySale.get(saleId) };
      const client = redis?.();
      if (!client) return { attempts: local, scope: 'this-process' };
      try {
        const shared = await client.hgetall(key(saleId));
        const attempts: Record<string, number> = {};
        for (const [outcome, n] of Object.entries(shared)) attempts[outcome] = Number(n);
        for (const [outcome, n] of Object.entries(unflushed.get(saleId) ?? {})) attempts[outcome] = (attempts[outcome] ?? 0) + n;
        return { attempts, scope: 'all-processes' };
      } catch {
        return { attempts: local, scope: 'this-process' };
      }
    },
    close() {
      clearInterval(timer);
      const client = redis?.();
      if (client) void flush(client);
    },
  };
}
