export const insertProduct = `insert into products (id, shop_id, name, description, price, currency, created_at)
  values ($1, $2, $3, $4, $5, $6, $7)`;
export const listProducts = `select id, shop_id, name, description, price, currency, created_at from products
  where ($1::uuid is null or shop_id = $1) order by created_at desc, id limit $2 offset $3`;
export const productsOfShop = `select id, name, currency from products where shop_id = $1 and id = any($2::uuid[])`;
export const insertSale = `insert into flash_sales (id, shop_id, name, starts_at, ends_at, payment_window_s, hold_mode, currency, created_at)
  values ($1, $2, $3, $4, $5, $6, $7, $8, $9)`;
export const insertSaleItems = `insert into sale_items (id, sale_id, product_id, flash_price, stock, per_user_limit)
  select id, $1, product, price, stock, lim
    from unnest($2::uuid[], $3::uuid[], $4::bigint[], $5::int[], $6::int[]) as i(id, product, price, stock, lim)`;
export const allSales = `select id, shop_id, name, starts_at, ends_at, payment_window_s, hold_mode, currency, created_at from flash_sales`;
export const allSaleItems = `select i.id, i.sale_id, i.product_id, p.name as product_name, i.flash_price, i.stock, i.per_user_limit
  from sale_items i join products p on p.id = i.product_id order by i.sale_id, p.created_at, i.id`;

export const salesCreatedSince = `select id, shop_id, name, starts_at, ends_at, payment_window_s, hold_mode, currency, created_at
  from flash_sales where created_at >= $1 order by created_at`;
export const itemsOfSales = `select i.id, i.sale_id, i.product_id, p.name as product_name, i.flash_price, i.stock, i.per_user_limit
  from sale_items i join products p on p.id = i.product_id where i.sale_id = any($1::uuid[]) order by i.sale_id, p.created_at, i.id`;
export const saleOfItem = `select sale_id from sale_items where id = $1`;
