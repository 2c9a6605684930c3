import { Type, type Static } from '@sinclair/typebox';

/** Catalog's events: producers type against these schemas. */
export const CatalogTopics = {
  scheduled: 'sale.scheduled',
} as const;

export const SaleScheduled = Type.Object({ saleId: Type.String(), shopId: Type.String(), startsAt: Type.String(), endsAt: Type.String() });
export type SaleScheduled = Static<typeof SaleScheduled>;
