/** Catalog's events. */
export const CatalogTopics = {
  scheduled: 'sale.scheduled',
} as const;

export interface SaleScheduled { saleId: string; shopId: string; startsAt: string; endsAt: string }
