/**
 * Purchase attempts this process answered, per sale and outcome (`accepted` or the refusal's
 * code): what the operations dashboard turns into attempts/s per sale. Prometheus gets the totals
 * without a sale label (flashsale_purchase_attempts_total): a label per sale would grow its series
 * with every sale. Only items the catalog knows are counted, and at most `maxSales` sales are kept
 * (the oldest forgotten first), so made-up ids cannot grow it.
 */
export interface SaleAttempts {
  count(saleItemId: string, outcome: string): void;
  of(saleId: string): Record<string, number>;
}

export function saleAttempts(saleOf: (saleItemId: string) => string | undefined, maxSales = 1000): SaleAttempts {
  const bySale = new Map<string, Record<string, number>>();
  return {
    count(saleItemId, outcome) {
      const saleId = saleOf(saleItemId.toLowerCase());
      if (saleId === undefined) return;
      let tally = bySale.get(saleId);
      if (!tally) {
        if (bySale.size >= maxSales) bySale.delete(bySale.keys().next().value!);
        tally = {};
        bySale.set(saleId, tally);
      }
      tally[outcome] = (tally[outcome] ?? 0) + 1;
    },
    of: (saleId) => ({ ...bySale.get(saleId) }),
  };
}
