import { randomUUID } from 'node:crypto';
import type { CatalogContext } from './context.ts';
import type { NewProduct, Product } from './model.ts';
import * as sql from './sql.ts';

interface ProductRow { id: string; shop_id: string; name: string; description: string; price: number; currency: string; created_at: Date }

/** A product of the merchant's shop. */
export async function createProduct({ db, clock }: CatalogContext, shopId: string, input: NewProduct): Promise<Product> {
  const product: Product = { id: randomUUID(), shopId, name: input.name, description: input.description ?? '', price: input.price, currency: input.currency, createdAt: clock.now() };
  await db.query(sql.insertProduct, [product.id, shopId, product.name, product.description, product.price, product.currency, product.createdAt]);
  return product;
}

/** Products, newest first, of one shop or all. */
export async function listProducts({ db }: CatalogContext, filter: { shopId?: string; limit: number; offset: number }): Promise<Product[]> {
  const rows = await db.query<ProductRow>(sql.listProducts, [filter.shopId ?? null, filter.limit, filter.offset]);
  return rows.map((r) => ({ id: r.id, shopId: r.shop_id, name: r.name, description: r.description, price: r.price, currency: r.currency, createdAt: r.created_at }));
}
