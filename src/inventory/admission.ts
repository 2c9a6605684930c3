import type { Admission, GateLine } from '../platform/gate/gate.ts';
import type { InventoryContext } from './context.ts';
import type { SoldOutFlags } from './sold-out-flags.ts';

/**
 * The hot-path decision: the local sold-out flag first (losers never reach the gate), then one
 * atomic gate call. An admitted attempt has taken units in the gate only: it must be followed by
 * `reserve` (the database's double check) or `undoAdmission`.
 */
export async function admit({ gate, clock, soldOut }: InventoryContext, userId: string, lines: readonly GateLine[]): Promise<Admission> {
  const flagged = lines.find((line) => soldOut.isFlagged(line.saleItemId));
  if (flagged) return { ok: false, reason: 'sold_out', saleItemId: flagged.saleItemId, remaining: 0 };
  const admission = await gate.admit(userId, lines, clock.now().getTime());
  flagWhatSoldOut(soldOut, lines, admission);
  return admission;
}

/** Gives back an admission whose holds were not written (refused by the database, or the batch failed). */
export async function undoAdmission({ gate, soldOut }: InventoryContext, userId: string, lines: readonly GateLine[]): Promise<void> {
  await gate.release(userId, lines);
  for (const line of lines) if (soldOut.isFlagged(line.saleItemId)) soldOut.clear(line.saleItemId);
}

/** Whether this process has the item flagged sold out right now (no gate, no database: a map read). */
export function flaggedSoldOut({ soldOut }: InventoryContext, saleItemId: string): boolean {
  return soldOut.isFlagged(saleItemId.toLowerCase());
}

/** Flags the items the gate's answer shows empty: the ones this attempt emptied, or the one it found empty. */
function flagWhatSoldOut(soldOut: SoldOutFlags, lines: readonly GateLine[], admission: Admission): void {
  if (admission.ok) admission.remaining.forEach((left, i) => left === 0 && soldOut.flag(lines[i]!.saleItemId));
  else if (admission.reason === 'sold_out' && admission.remaining === 0) soldOut.flag(admission.saleItemId);
}
