export const insertOrders = `
  insert into orders (id, user_id, sale_id, status, total_amount, currency, created_at, expires_at, updated_at, traceparent)
  select id, usr, sale, 'PENDING_PAYMENT', total, cur, $7, exp, $7, tp
    from unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::bigint[], $5::text[], $6::timestamptz[], $8::text[]) as o(id, usr, sale, total, cur, exp, tp)`;

/** The traceparent an order was placed under (null while tracing was off), for its payment and webhook spans. */
export const selectOrderTrace = 'select traceparent from orders where id = $1';

export const insertOrderItems = `
  insert into order_items (order_id, sale_item_id, hold_id, product_id, quantity, unit_price)
  select * from unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::int[], $6::bigint[])`;

export const orderOfUser = `
  select id, user_id, sale_id, status, total_amount, currency, created_at, expires_at, updated_at, closed_reason
    from orders where id = $1 and user_id = $2`;

export const ordersOfUser = `
  select id, user_id, sale_id, status, total_amount, currency, created_at, expires_at, updated_at, closed_reason
    from orders where user_id = $1 and ($2::text is null or status = $2)
   order by created_at desc, id limit $3 offset $4`;

export const itemsOfOrders = `
  select order_id, sale_item_id, hold_id, product_id, quantity, unit_price
    from order_items where order_id = any($1::uuid[]) order by sale_item_id`;

export const cancelPending = `
  update orders set status = 'CANCELLED', closed_reason = $3, updated_at = $4
   where id = $1 and user_id = $2 and status = 'PENDING_PAYMENT'
  returning id, user_id, sale_id, status, total_amount, currency, created_at, expires_at, updated_at, closed_reason`;

export const auditOrders = `
  select o.id, o.status, i.hold_id from orders o join order_items i on i.order_id = o.id`;

export const orderById = `
  select id, user_id, sale_id, status, total_amount, currency, created_at, expires_at, updated_at, closed_reason
    from orders where id = $1`;

export const lockOrder = `${orderById} for update`;

export const markPaid = `
  update orders set status = 'PAID', updated_at = $2 where id = $1 and status = 'PENDING_PAYMENT' returning user_id`;

export const lockPendingForPayment = `
  select 1 from orders where id = $1 and status = 'PENDING_PAYMENT' and expires_at > $2 for share`;

export const markExpired = `
  update orders set status = 'EXPIRED', closed_reason = 'payment_window_elapsed', updated_at = $2
   where id = $1 and status = 'PENDING_PAYMENT' returning user_id`;

export const markCancelled = `
  update orders set status = 'CANCELLED', closed_reason = $2, updated_at = $3 where id = $1 and status = $4 returning user_id`;

export const overdueOrders = `
  select id, traceparent from orders where status = 'PENDING_PAYMENT' and expires_at <= $1 order by expires_at limit $2`;

export const allOrderTerms = `select id, status, total_amount, currency from orders`;
