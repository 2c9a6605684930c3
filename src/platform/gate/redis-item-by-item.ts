import type { GateLine } from './gate.ts';
import { GateCode, type Reply } from './redis-scripts.ts';

/**
 * On a Redis Cluster two items live in different slots and one script may touch only one slot,
 * so a multi-line attempt is admitted item by item, each step atomic, in a fixed order (by sale
 * item id, so attempts over the same items take them in the same order). When a later line is
 * refused, the lines already taken are released again. In between, another buyer may see those
 * units taken and be refused — a lost sale, never an oversell; and if the compensation itself
 * fails, the units stay taken (too conservative) until the next rebuild.
 */
export async function admitItemByItem(
  lines: readonly GateLine[],
  admitOne: (line: GateLine) => Promise<Reply>,
  release: (taken: GateLine[]) => Promise<void>,
): Promise<Reply> {
  const remaining = lines.map(() => 0);
  const taken: GateLine[] = [];
  const compensate = () => (taken.length === 0 ? Promise.resolve() : release(taken).catch(() => undefined));
  for (const i of lockOrder(lines)) {
    const line = lines[i]!;
    let reply: Reply;
    try {
      reply = await admitOne(line);
    } catch (error) {
      await compensate();
      throw error;
    }
    if (reply.code !== GateCode.ok) {
      await compensate();
      return { ...reply, line: i };
    }
    remaining[i] = reply.remaining[0]!;
    taken.push(line);
  }
  return { code: GateCode.ok, remaining };
}

/** Indexes of the lines by sale item id, then by position. */
function lockOrder(lines: readonly GateLine[]): number[] {
  return lines.map((_, i) => i).sort((a, b) => (lines[a]!.saleItemId < lines[b]!.saleItemId ? -1 : lines[a]!.saleItemId > lines[b]!.saleItemId ? 1 : a - b));
}
