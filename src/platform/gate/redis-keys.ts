/**
 * The Redis keys of the stock gate (`P` = prefix):
 * - `P:gate:{<saleItemId>}:item`     hash: available, limit, startsAt, endsAt, epoch (generation it was loaded under)
 * - `P:gate:{<saleItemId>}:quota`    hash: userId → units held or bought
 * - `P:gate:{fence}:epoch`           the fence: the current generation; present only while the
 *                                    gate holds a complete image of the database
 * - `P:gate:{fence}:rebuild-lock`    the generation being rebuilt; one rebuilding process at a time
 */

/**
 * The keys of one sale item. The hash tag is the sale item id, so everything one decision about
 * one item touches lives in one Redis Cluster slot; the prefix carries no braces.
 */
export function gateKeys(prefix: string, saleItemId: string): { item: string; quota: string } {
  return { item: `${prefix}:gate:{${saleItemId}}:item`, quota: `${prefix}:gate:{${saleItemId}}:quota` };
}

/** The fence and the rebuild lock (see redis-fence.ts). */
export function fenceKeys(prefix: string): { fence: string; lock: string } {
  return { fence: `${prefix}:gate:{fence}:epoch`, lock: `${prefix}:gate:{fence}:rebuild-lock` };
}
