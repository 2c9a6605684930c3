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

export const orderVersions = `select id, status, updated_at from orders where id = any($1::uuid[])`;

export const ordersOfUser = `
  select id, user_id, sale_id, status, total_amount, currency, created_at, expires_at, updated_at, closed_reason
    from orders where user_id = $1 and ($2::text is null or status = $2)
   order by created_at desc, id limit $3 offset $4`;

export const itemsOfOrders = `
  select order_id, sale_item_id, hold_id, product_id, quantity, unit_price, cancelled_at
    from order_items where order_id = any($1::uuid[]) order by sale_item_id`;

export const cancelPending = `
  update orders set status = 'CANCELLED', closed_reason = $3, updated_at = $4
   where id = $1 and user_id = $2 and status = 'PENDING_PAYMENT'
  returning id, user_id, sale_id, status, total_amount, currency, created_at, expires_at, updated_at, closed_reason`;

export const auditOrders = `
  select o.id, o.status, i.hold_id, i.cancelled_at is not null as cancelled from orders o join order_items i on i.order_id = o.id`;

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

/** What the cancelled lines of each order cost: refunded in part. */
const refundedOf = `coalesce((select sum(i.quantity * i.unit_price) from order_items i where i.order_id = o.id and i.cancelled_at is not null), 0) as refunded_amount`;

export const allOrderTerms = `select o.id, o.status, o.total_amount, o.currency, ${refundedOf} from orders o`;

export const orderTermsById = `select o.id, o.status, o.total_amount, o.currency, ${refundedOf} from orders o where o.id = $1`;

export const markFulfilled = `
  update orders set status = 'FULFILLED', updated_at = $2 where id = $1 and status = 'PAID' returning user_id`;

/** The named lines of the order still active, locked with it by the caller. */
export const cancelLines = `
  update order_items set cancelled_at = $3 where order_id = $1 and sale_item_id = any($2::uuid[]) and cancelled_at is null
  returning sale_item_id, hold_id, quantity, unit_price`;

/** The named lines of the order, not cancelled, leave with a carrier (fulfillment's shipment). */
export const markLinesShipped = `
  update order_items set shipped_at = $3 where order_id = $1 and sale_item_id = any($2::uuid[]) and cancelled_at is null and shipped_at is null`;

export const shippedLines = `select count(*)::int as n from order_items where order_id = $1 and shipped_at is not null`;

export const activeLines = `select count(*)::int as n from order_items where order_id = $1 and cancelled_at is null`;

/** The merchant's orders: those of the given sales, filtered; $2 an item the order has, $3 a status, [$4, $5) the creation time. */
const shopFilter = `
  o.sale_id = any($1::uuid[])
  and ($2::uuid is null or exists (select 1 from order_items f where f.order_id = o.id and f.sale_item_id = $2))
  and ($3::text is null or o.status = $3)
  and ($4::timestamptz is null or o.created_at >= $4)
  and ($5::timestamptz is null or o.created_at < $5)`;

export const shopOrders = `
  select id, user_id, sale_id, status, total_amount, currency, created_at, expires_at, updated_at, closed_reason
    from orders o where ${shopFilter}
   order by created_at desc, id limit $6 offset $7`;

export const shopOrderCount = `select count(*)::int as n from orders o where ${shopFilter}`;

/** Units and money of the matching orders' lines not cancelled (only the filtered item's lines when $2 is set), per currency. */
export const shopOrderTotals = `
  select o.currency, coalesce(sum(i.quantity), 0)::int as units, coalesce(sum(i.quantity * i.unit_price), 0)::bigint as amount
    from orders o join order_items i on i.order_id = o.id and i.cancelled_at is null and ($2::uuid is null or i.sale_item_id = $2)
   where ${shopFilter}
   group by o.currency order by o.currency`;
export const pendingOfSales = `select id from orders where sale_id = any($1::uuid[]) and status = 'PENDING_PAYMENT'`;

/** A cancelled sale's orders to close: pending ones, and those paid since the cancel (paid in the race). */
export const ordersToCloseForSale = `
  select id, status from orders
   where sale_id = $1 and (status = 'PENDING_PAYMENT' or (status = 'PAID' and updated_at >= $2))
   order by created_at, id`;

/** A sale's orders by outcome, for the merchant's summary; "paid" is every state past payment. */
export const saleSummary = `
  select count(*)::int as orders,
         (count(*) filter (where status not in ('PENDING_PAYMENT', 'CANCELLED', 'EXPIRED')))::int as paid,
         (count(*) filter (where status = 'EXPIRED'))::int as expired,
         (count(*) filter (where status = 'CANCELLED'))::int as cancelled,
         (count(*) filter (where status = 'PENDING_PAYMENT'))::int as pending,
         0::bigint as revenue
    from orders where sale_id = $1`;

/** Units and money of the paid orders' lines the merchant did not cancel (a cancelled line was refunded). */
export const unitsSoldOfSale = `
  select coalesce(sum(i.quantity), 0)::int as units, coalesce(sum(i.quantity * i.unit_price), 0)::bigint as revenue
    from order_items i join orders o on o.id = i.order_id
   where o.sale_id = $1 and o.status not in ('PENDING_PAYMENT', 'CANCELLED', 'EXPIRED') and i.cancelled_at is null`;
