import { Type, type Static } from '@sinclair/typebox';

/** Catalog's events: producers type against these schemas. */
export const CatalogTopics = {
  scheduled: 'sale.scheduled',
  /** A scheduled sale was edited (times, items, stock, limits). */
  updated: 'sale.updated',
  /** The merchant cancelled the sale: order closes its pending orders. */
  cancelled: 'sale.cancelled',
  /** Units were added to an item of the sale. */
  stockAdded: 'sale.stock_added',
  /**
   * The sale is over and its orders settled (delayed: to `endsAt` + the payment window, or a little
   * after a cancel). An edit sends a new one; a consumer checks the sale really is over, and
   * tells the merchant once (notification).
   */
  ended: 'sale.ended',
} as const;

export const SaleScheduled = Type.Object({ saleId: Type.String(), shopId: Type.String(), startsAt: Type.String(), endsAt: Type.String() });
export type SaleScheduled = Static<typeof SaleScheduled>;

export const SaleUpdated = Type.Object({ saleId: Type.String(), shopId: Type.String(), version: Type.Integer(), startsAt: Type.String(), endsAt: Type.String() });
export type SaleUpdated = Static<typeof SaleUpdated>;

export const SaleCancelled = Type.Object({ saleId: Type.String(), shopId: Type.String(), cancelledAt: Type.String() });
export type SaleCancelled = Static<typeof SaleCancelled>;

export const SaleStockAdded = Type.Object({ saleId: Type.String(), shopId: Type.String(), saleItemId: Type.String(), quantity: Type.Integer() });
export type SaleStockAdded = Static<typeof SaleStockAdded>;

export const SaleEnded = Type.Object({ saleId: Type.String(), shopId: Type.String() });
export type SaleEnded = Static<typeof SaleEnded>;
