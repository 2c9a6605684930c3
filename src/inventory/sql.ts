// Inventory's SQL. Only this component reads or writes these tables.

export const insertStockItems = `
  insert into stock_items (sale_item_id, sale_id, initial, available, held, sold, per_user_limit, on_sale_from, on_sale_until)
  select id, sale, qty, qty, 0, 0, lim, $5, $6
    from unnest($1::uuid[], $2::uuid[], $3::int[], $4::int[]) as s(id, sale, qty, lim)`;

/** Row locks in a fixed order, so two batches never deadlock on the same items. */
export const lockStockItems = `
  select sale_item_id, available, initial, per_user_limit, on_sale_from, on_sale_until from stock_items
   where sale_item_id = any($1::uuid[]) order by sale_item_id for update`;

export const lockQuotas = `
  select q.sale_item_id, q.user_id, q.quantity from purchase_quotas q
    join unnest($1::uuid[], $2::uuid[]) as k(item, usr) on q.sale_item_id = k.item and q.user_id = k.usr
   order by q.sale_item_id, q.user_id for update of q`;

export const takeStock = `
  update stock_items s set available = s.available - d.qty, held = s.held + d.qty
    from unnest($1::uuid[], $2::int[]) as d(id, qty)
   where s.sale_item_id = d.id`;

/** Per-user totals; the table's CHECK refuses anything past the limit, whatever the gate said. */
export const addQuotas = `
  insert into purchase_quotas (sale_item_id, user_id, quantity, per_user_limit)
  select d.item, d.usr, d.qty, d.lim
    from unnest($1::uuid[], $2::uuid[], $3::int[], $4::int[]) as d(item, usr, qty, lim)
  on conflict (sale_item_id, user_id) do update set quantity = purchase_quotas.quantity + excluded.quantity`;

export const insertHolds = `
  insert into holds (id, sale_item_id, user_id, quantity, status, kind, order_id, created_at, expires_at)
  select id, item, usr, qty, 'held', kind, ord, $8, exp
    from unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::int[], $5::text[], $6::uuid[], $7::timestamptz[])
      as h(id, item, usr, qty, kind, ord, exp)`;

export const releaseHoldsOfOrder = `
  update holds set status = 'released', released_at = $2, release_reason = $3
   where order_id = $1 and status = 'held'
  returning id, sale_item_id, user_id, quantity, order_id`;

export const releaseHoldsById = `
  update holds set status = 'released', released_at = $2, release_reason = $3
   where id = any($1::uuid[]) and status = 'held'
  returning id, sale_item_id, user_id, quantity, order_id`;

export const giveBackStock = `
  update stock_items s set available = s.available + d.qty, held = s.held - d.qty
    from unnest($1::uuid[], $2::int[]) as d(id, qty)
   where s.sale_item_id = d.id`;

export const reduceQuotas = `
  update purchase_quotas q set quantity = q.quantity - d.qty
    from unnest($1::uuid[], $2::uuid[], $3::int[]) as d(item, usr, qty)
   where q.sale_item_id = d.item and q.user_id = d.usr`;

export const cartHoldsOfUser = `
  select id, sale_item_id, quantity, created_at, expires_at from holds
   where user_id = $1 and kind = 'cart' and status = 'held' and order_id is null
   order by created_at`;

export const lockCartHoldsOfUser = `${cartHoldsOfUser} for update`;

export const attachHoldsToOrder = `
  update holds set order_id = $2 where id = any($1::uuid[]) and status = 'held' and order_id is null returning id`;

export const initialOfItems = `select sale_item_id, initial from stock_items where sale_item_id = any($1::uuid[])`;

export const allStockItems = `select sale_item_id, available, per_user_limit, on_sale_from, on_sale_until from stock_items`;
export const allQuotas = `select sale_item_id, user_id, quantity from purchase_quotas where quantity > 0`;

export const auditStock = `
  select s.sale_item_id, s.initial, s.available, s.held, s.sold, s.written_off,
         coalesce(sum(h.quantity) filter (where h.status = 'held'), 0) as holds_held,
         coalesce(sum(h.quantity) filter (where h.status = 'sold'), 0) as holds_sold,
         coalesce(sum(h.quantity) filter (where h.status = 'written_off'), 0) as holds_written_off
    from stock_items s left join holds h on h.sale_item_id = s.sale_item_id
   group by s.sale_item_id`;

export const auditQuotas = `
  with taken as (
    select sale_item_id, user_id, sum(quantity) as qty from holds
     where status in ('held', 'sold', 'written_off') group by sale_item_id, user_id)
  select coalesce(q.sale_item_id, t.sale_item_id) as sale_item_id, coalesce(q.user_id, t.user_id) as user_id,
         coalesce(q.quantity, 0) as quota, coalesce(t.qty, 0) as taken, q.per_user_limit
    from purchase_quotas q full join taken t on t.sale_item_id = q.sale_item_id and t.user_id = q.user_id
   where coalesce(q.quantity, 0) <> coalesce(t.qty, 0) or q.quantity > q.per_user_limit`;

export const orphanOrderHolds = `select id from holds where kind = 'order' and order_id is null`;

export const holdsOfOrders = `select id, order_id, sale_item_id, quantity, status from holds where order_id is not null`;

export const sellHoldsOfOrder = `
  update holds set status = 'sold' where order_id = $1 and status = 'held'
  returning id, sale_item_id, user_id, quantity, order_id`;

export const moveHeldToSold = `
  update stock_items s set held = s.held - d.qty, sold = s.sold + d.qty
    from unnest($1::uuid[], $2::int[]) as d(id, qty)
   where s.sale_item_id = d.id`;

export const unsellHoldsOfOrder = `
  update holds set status = $2, released_at = $3, release_reason = $4 where order_id = $1 and status = 'sold'
  returning id, sale_item_id, user_id, quantity, order_id`;

export const unsellHoldsById = `
  update holds set status = $2, released_at = $3, release_reason = $4 where id = any($1::uuid[]) and status = 'sold'
  returning id, sale_item_id, user_id, quantity, order_id`;

export const restockSold = `
  update stock_items s set sold = s.sold - d.qty, available = s.available + d.qty
    from unnest($1::uuid[], $2::int[]) as d(id, qty)
   where s.sale_item_id = d.id`;

export const writeOffSold = `
  update stock_items s set sold = s.sold - d.qty, written_off = s.written_off + d.qty
    from unnest($1::uuid[], $2::int[]) as d(id, qty)
   where s.sale_item_id = d.id`;

export const expiredCartHolds = `
  select id from holds where kind = 'cart' and status = 'held' and order_id is null and expires_at <= $1
   order by expires_at limit $2`;

export const staleHolds = `select id from holds where status = 'held' and expires_at < $1`;

export const releaseExpiredCartHold = `
  update holds set status = 'released', released_at = $2, release_reason = 'expired'
   where id = $1 and kind = 'cart' and status = 'held' and order_id is null and expires_at <= $2
  returning id, sale_item_id, user_id, quantity, order_id`;

/** Sale management: the items' stock rows, locked in the fixed order (as a batch locks them). */
export const lockStockRows = `
  select sale_item_id, initial, available, held, sold, written_off, per_user_limit, on_sale_from, on_sale_until from stock_items
   where sale_item_id = any($1::uuid[]) order by sale_item_id for update`;

/** New terms for one item: initial and available move together, so the row stays balanced. */
export const adjustStockRow = `
  update stock_items set initial = initial + $2, available = available + $2, per_user_limit = $3, on_sale_from = $4, on_sale_until = $5
   where sale_item_id = $1 and available + $2 >= 0
  returning sale_item_id, available`;

export const adjustQuotaLimits = `update purchase_quotas set per_user_limit = $2 where sale_item_id = $1`;

/** Only an item nothing was ever taken from can go. */
export const deleteUntouchedStock = `
  delete from stock_items where sale_item_id = any($1::uuid[]) and held = 0 and sold = 0 and written_off = 0
    and not exists (select 1 from holds h where h.sale_item_id = stock_items.sale_item_id)
  returning sale_item_id`;

export const deleteQuotasOfItems = `delete from purchase_quotas where sale_item_id = any($1::uuid[])`;

export const cartHoldsOfItems = `
  select id from holds where sale_item_id = any($1::uuid[]) and kind = 'cart' and status = 'held' and order_id is null`;
