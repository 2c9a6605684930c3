import type { SoldOutChannel } from '../platform/gate/sold-out-channel.ts';

/**
 * The sold-out short-circuit in front of the gate: a flag per item in this process, set from the
 * gate's answers and shared with every other API process through the channel. A flag is only a
 * hint that expires by itself; the gate still decides.
 */
export interface SoldOutFlags {
  /** Whether the item is flagged and its flag has not expired (an expired flag is dropped here). */
  isFlagged(saleItemId: string): boolean;
  /** Sets the flag here and, through the channel, in every other API process. */
  flag(saleItemId: string): void;
  /** Clears the flag here and in every other API process (units came back). */
  clear(saleItemId: string): void;
  /** Drops every flag of this process only (the gate was just rebuilt from the database). */
  forgetAll(): void;
}

export function createSoldOutFlags(channel: SoldOutChannel, ttlMs: number): SoldOutFlags {
  // The flag's TTL is operational, not business time: it runs on the monotonic timer so a test's
  // frozen clock cannot pin an item as sold out forever. Not bounded, and need not be: only items the
  // gate knows are flagged (admit runs for catalog items only; other processes publish the same), so
  // it holds at most one entry per sale item, whatever ids clients send.
  const soldOutUntil = new Map<string, number>();

  channel.subscribe((saleItemId, soldOut) => {
    if (soldOut) soldOutUntil.set(saleItemId, performance.now() + ttlMs);
    else soldOutUntil.delete(saleItemId);
  });

  function isFlagged(saleItemId: string): boolean {
    const until = soldOutUntil.get(saleItemId);
    if (until === undefined) return false;
    if (until > performance.now()) return true;
    soldOutUntil.delete(saleItemId);
    return false;
  }

  return {
    isFlagged,
    flag(saleItemId) {
      if (isFlagged(saleItemId)) return;
      soldOutUntil.set(saleItemId, performance.now() + ttlMs);
      channel.publish(saleItemId, true);
    },
    clear(saleItemId) {
      soldOutUntil.delete(saleItemId);
      channel.publish(saleItemId, false);
    },
    forgetAll() {
      soldOutUntil.clear();
    },
  };
}
