const shipmentColumns = 'id, order_id, shop_id, user_id, sale_id, status, carrier, tracking_number, created_at, shipped_at, delivered_at';

/** The shipment the order-paid consumer opens has the order's id: opening it twice is a no-op. */
export const openShipment = `
  insert into shipments (id, order_id, shop_id, user_id, sale_id, status, created_at, updated_at)
  values ($1, $1, $2, $3, $4, 'PENDING', $5, $5) on conflict (id) do nothing`;

export const openLines = `
  insert into shipment_lines (order_id, sale_item_id, shipment_id, quantity, status)
  select $1, item, $1, qty, 'PENDING' from unnest($2::uuid[], $3::int[]) as l(item, qty)
  on conflict (order_id, sale_item_id) do nothing`;

export const shipmentById = `select ${shipmentColumns} from shipments where id = $1`;

export const lockShipment = `${shipmentById} for update`;

export const shipmentsOfOrders = `select ${shipmentColumns} from shipments where order_id = any($1::uuid[]) order by created_at, id`;

export const linesOfShipments = `
  select shipment_id, sale_item_id, quantity, status from shipment_lines where shipment_id = any($1::uuid[]) order by sale_item_id`;

export const linesOfOrder = `select sale_item_id, shipment_id, quantity, status from shipment_lines where order_id = $1 order by sale_item_id for update`;

/** Every line still pending was named: the order's own shipment leaves with them. */
export const shipWhole = `
  update shipments set status = 'SHIPPED', carrier = $2, tracking_number = $3, shipped_at = $4, updated_at = $4
   where id = $1 and status = 'PENDING'`;

export const insertShipped = `
  insert into shipments (id, order_id, shop_id, user_id, sale_id, status, carrier, tracking_number, created_at, updated_at, shipped_at)
  values ($1, $2, $3, $4, $5, 'SHIPPED', $6, $7, $8, $8, $8)`;

export const shipLines = `
  update shipment_lines set status = 'SHIPPED', shipment_id = $3 where order_id = $1 and sale_item_id = any($2::uuid[]) and status = 'PENDING'`;

export const markDelivered = `
  update shipments set status = 'DELIVERED', delivered_at = $2, updated_at = $2 where id = $1 and status = 'SHIPPED'`;

export const cancelLines = `
  update shipment_lines set status = 'CANCELLED', restocked = $3 where order_id = $1 and sale_item_id = any($2::uuid[]) and status = 'PENDING'`;

/** Every pending line of the order cancelled (the whole order was cancelled after payment). */
export const cancelPendingLines = `update shipment_lines set status = 'CANCELLED' where order_id = $1 and status = 'PENDING'`;

/** The order's own shipment, once nothing in it is left to ship and nothing shipped with it: CANCELLED. */
export const closeEmptyShipment = `
  update shipments s set status = 'CANCELLED', updated_at = $2
   where s.id = $1 and s.status = 'PENDING'
     and not exists (select 1 from shipment_lines l where l.shipment_id = s.id and l.status <> 'CANCELLED')`;

export const pendingLineCount = `select count(*)::int as n from shipment_lines where order_id = $1 and status = 'PENDING'`;

/** The CSV's tracking: every shipment of the named orders, with its lines. */
export const trackingOfOrders = `
  select l.order_id, l.sale_item_id, l.status as line_status, s.id as shipment_id, s.status, s.carrier, s.tracking_number
    from shipment_lines l join shipments s on s.id = l.shipment_id where l.order_id = any($1::uuid[])`;

export const auditShipmentOrders = `select distinct order_id from shipments`;

export const auditShippedUnits = `
  select sale_item_id, sum(quantity)::int as shipped from shipment_lines where status = 'SHIPPED' group by sale_item_id`;
