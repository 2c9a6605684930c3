-- order: which of an order's lines have shipped, so order itself refuses to cancel (and refund) an
-- order whose goods have left; fulfillment sets it in the transaction that ships the line.
alter table order_items add column shipped_at timestamptz;

update order_items i set shipped_at = s.shipped_at
  from shipment_lines l join shipments s on s.id = l.shipment_id
 where l.order_id = i.order_id and l.sale_item_id = i.sale_item_id and l.status = 'SHIPPED' and i.cancelled_at is null;
