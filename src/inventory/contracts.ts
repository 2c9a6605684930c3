import { Type, type Static } from '@sinclair/typebox';

/** Inventory's events: producers type against these schemas, consumers check payloads with them (readPayload). */
export const InventoryTopics = {
  reserved: 'stock.reserved',
  released: 'stock.released',
  /** A paid order's held units became sold. */
  sold: 'stock.sold',
  soldOut: 'stock.sold_out',
  restocked: 'stock.restocked',
  /** Internal: a cart hold's time is up (delayed message to itself). */
  holdExpiry: 'stock.hold_expiry',
} as const;

export const StockReserved = Type.Object({ saleItemId: Type.String(), quantity: Type.Integer(), available: Type.Integer() });
export type StockReserved = Static<typeof StockReserved>;

export const StockReleased = Type.Object({
  holdId: Type.String(), orderId: Type.Union([Type.String(), Type.Null()]), saleItemId: Type.String(), userId: Type.String(), quantity: Type.Integer(), reason: Type.String(),
});
export type StockReleased = Static<typeof StockReleased>;

/**
 * An item's last unit was taken. `stock` is the item's stock (initial, units added included) at that
 * moment: it names the sell-out, so units added and sold out again make another (optional: events
 * written before it was carried lack it).
 */
export const StockSoldOut = Type.Object({ saleItemId: Type.String(), stock: Type.Optional(Type.Integer()) });
export type StockSoldOut = Static<typeof StockSoldOut>;

export const StockRestocked = Type.Object({ saleItemId: Type.String(), available: Type.Integer() });
export type StockRestocked = Static<typeof StockRestocked>;

export const StockSold = Type.Object({ holdId: Type.String(), orderId: Type.String(), saleItemId: Type.String(), quantity: Type.Integer() });
export type StockSold = Static<typeof StockSold>;

export const HoldExpiry = Type.Object({ holdId: Type.String() });
export type HoldExpiry = Static<typeof HoldExpiry>;
