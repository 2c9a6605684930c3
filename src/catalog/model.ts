/** The catalog's shapes: a product, a flash sale and its items, as every caller sees them. */

export type HoldMode = 'order' | 'cart';
export type SaleStatus = 'scheduled' | 'active' | 'ended' | 'cancelled';

export interface Product {
  id: string;
  shopId: string;
  name: string;
  description: string;
  price: number;
  currency: string;
  createdAt: Date;
}

export interface SaleItem {
  id: string;
  saleId: string;
  productId: string;
  productName: string;
  flashPrice: number;
  stock: number;
  perUserLimit: number;
}

export interface FlashSale {
  id: string;
  shopId: string;
  name: string;
  startsAt: Date;
  endsAt: Date;
  paymentWindowS: number;
  holdMode: HoldMode;
  currency: string;
  createdAt: Date;
  /** Set once the merchant cancelled the sale (before or during it). */
  cancelledAt: Date | null;
  /** Bumped by every change (edit, cancel, stock added): how every process's warm copy tells it is stale. */
  version: number;
  updatedAt: Date;
  items: SaleItem[];
}

export interface NewProduct {
  name: string;
  description?: string;
  price: number;
  currency: string;
}

export interface NewFlashSale {
  name: string;
  startsAt: Date;
  endsAt: Date;
  paymentWindowS: number;
  holdMode: HoldMode;
  items: Array<{ productId: string; flashPrice: number; stock: number; perUserLimit: number }>;
}

/** A sale's edit: every field optional; `items`, when given, is the whole new list, matched to the old one by product. */
export interface SaleChanges {
  name?: string;
  startsAt?: Date;
  endsAt?: Date;
  paymentWindowS?: number;
  items?: NewFlashSale['items'];
}

export function saleStatus(sale: FlashSale, now: Date): SaleStatus {
  if (sale.cancelledAt) return 'cancelled';
  if (now < sale.startsAt) return 'scheduled';
  return now < sale.endsAt ? 'active' : 'ended';
}

export interface SaleRow { id: string; shop_id: string; name: string; starts_at: Date; ends_at: Date; payment_window_s: number; hold_mode: HoldMode; currency: string; created_at: Date; cancelled_at: Date | null; version: number; updated_at: Date }
export interface ItemRow { id: string; sale_id: string; product_id: string; product_name: string; flash_price: number; stock: number; per_user_limit: number }

export function toSale(r: SaleRow, saleItems: SaleItem[]): FlashSale {
  return { id: r.id, shopId: r.shop_id, name: r.name, startsAt: r.starts_at, endsAt: r.ends_at, paymentWindowS: r.payment_window_s, holdMode: r.hold_mode, currency: r.currency, createdAt: r.created_at,
    cancelledAt: r.cancelled_at, version: r.version, updatedAt: r.updated_at, items: saleItems };
}

export function toItem(r: ItemRow): SaleItem {
  return { id: r.id, saleId: r.sale_id, productId: r.product_id, productName: r.product_name, flashPrice: r.flash_price, stock: r.stock, perUserLimit: r.per_user_limit };
}

/** How long after `endsAt` + the payment window a sale's end is announced: its last deadlines have run by then. */
export const SALE_END_MARGIN_MS = 5_000;

/** When a sale's `sale.ended` is due: once its last buyer's payment window has closed. */
export function saleEndsSettledAt(sale: Pick<FlashSale, 'endsAt' | 'paymentWindowS'>): number {
  return sale.endsAt.getTime() + sale.paymentWindowS * 1000 + SALE_END_MARGIN_MS;
}
