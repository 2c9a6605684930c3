export const insertProduct = `insert into products (id, shop_id, name, description, price, currency, created_at)
  values ($1, $2, $3, $4, $5, $6, $7)`;
export const listProducts = `select id, shop_id, name, description, price, currency, created_at from products
  where ($1::uuid is null or shop_id = $1) order by created_at desc, id limit $2 offset $3`;
export const productsOfShop = `select id, name, currency from products where shop_id = $1 and id = any($2::uuid[])`;
export const insertSale = `insert into flash_sales (id, shop_id, name, starts_at, ends_at, payment_window_s, hold_mode, currency, created_at, updated_at)
  values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)`;
export const insertSaleItems = `insert into sale_items (id, sale_id, product_id, flash_price, stock, per_user_limit)
  select id, $1, product, price, stock, lim
    from unnest($2::uuid[], $3::uuid[], $4::bigint[], $5::int[], $6::int[]) as i(id, product, price, stock, lim)`;
const SALE_COLUMNS = 'id, shop_id, name, starts_at, ends_at, payment_window_s, hold_mode, currency, created_at, cancelled_at, version, updated_at';
export const allSales = `select ${SALE_COLUMNS} from flash_sales`;
export const allSaleItems = `select i.id, i.sale_id, i.product_id, p.name as product_name, i.flash_price, i.stock, i.per_user_limit
  from sale_items i join products p on p.id = i.product_id order by i.sale_id, p.created_at, i.id`;

/** Sales created or changed since; the caller compares versions with what it holds. */
export const salesChangedSince = `select ${SALE_COLUMNS} from flash_sales where updated_at >= $1 order by updated_at`;
export const itemsOfSales = `select i.id, i.sale_id, i.product_id, p.name as product_name, i.flash_price, i.stock, i.per_user_limit
  from sale_items i join products p on p.id = i.product_id where i.sale_id = any($1::uuid[]) order by i.sale_id, p.created_at, i.id`;
export const saleOfItem = `select sale_id from sale_items where id = $1`;

/** Sale management: the sale row locked, of this shop only (another shop's sale is not found). */
export const lockSaleOfShop = `select ${SALE_COLUMNS} from flash_sales where id = $1 and shop_id = $2 for update`;
export const itemsOfSale = `select i.id, i.sale_id, i.product_id, p.name as product_name, i.flash_price, i.stock, i.per_user_limit
  from sale_items i join products p on p.id = i.product_id where i.sale_id = $1 order by p.created_at, i.id`;
export const updateSale = `update flash_sales set name = $2, starts_at = $3, ends_at = $4, payment_window_s = $5, updated_at = $6, version = version + 1
  where id = $1 returning ${SALE_COLUMNS}`;
export const cancelSale = `update flash_sales set cancelled_at = $2, updated_at = $2, version = version + 1 where id = $1 and cancelled_at is null
  returning ${SALE_COLUMNS}`;
export const touchSale = `update flash_sales set updated_at = $2, version = version + 1 where id = $1 returning ${SALE_COLUMNS}`;
export const updateSaleItem = `update sale_items set flash_price = $2, stock = $3, per_user_limit = $4 where id = $1`;
export const addSaleItemStock = `update sale_items set stock = stock + $3 where id = $1 and sale_id = $2 returning id`;
export const deleteSaleItems = `delete from sale_items where id = any($1::uuid[])`;
