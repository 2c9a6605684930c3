/** Inventory's events: the only part of inventory another component may import besides index.ts. */
export const InventoryTopics = {
  reserved: 'stock.reserved',
  released: 'stock.released',
  committed: 'stock.committed',
  soldOut: 'stock.sold_out',
  restocked: 'stock.restocked',
  /** Internal: a cart hold's time is up (delayed message to itself). */
  holdExpiry: 'stock.hold_expiry',
} as const;

export interface StockReserved { saleItemId: string; quantity: number; available: number }
export interface StockReleased { holdId: string; orderId: string | null; saleItemId: string; userId: string; quantity: number; reason: string }
export interface StockSoldOut { saleItemId: string }
export interface StockRestocked { saleItemId: string; available: number }
export interface StockCommitted { holdId: string; orderId: string; saleItemId: string; quantity: number }
export interface HoldExpiry { holdId: string }
