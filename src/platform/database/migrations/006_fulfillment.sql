-- Fulfillment: a shipment per paid order, its lines shipped (maybe in several parcels) or cancelled;
-- a cancelled line is refunded in part.

-- order: a line the merchant cancelled after payment (refunded; its units restocked or written off).
alter table order_items add column cancelled_at timestamptz;

-- payment: refunds in part. Each refund of a payment has a key ('full', or 'line-<holdId>'),
-- unique per payment, so a redelivered request gets the same refund.
alter table refunds add column refund_key text not null default 'full';
alter table refunds drop constraint refunds_payment_id_key;
alter table refunds add constraint refunds_payment_key unique (payment_id, refund_key);

-- fulfillment: the shipment the order-paid consumer opens has the order's id; lines shipped in part
-- move to a shipment of their own.
create table shipments (
  id uuid primary key,
  order_id uuid not null,
  shop_id uuid not null,
  user_id uuid not null,
  sale_id uuid not null,
  status text not null check (status in ('PENDING', 'SHIPPED', 'DELIVERED', 'CANCELLED')),
  carrier text,
  tracking_number text,
  created_at timestamptz not null,
  updated_at timestamptz not null,
  shipped_at timestamptz,
  delivered_at timestamptz
);
create index shipments_order on shipments(order_id);
create index shipments_shop on shipments(shop_id, created_at desc);

create table shipment_lines (
  order_id uuid not null,
  sale_item_id uuid not null,
  shipment_id uuid not null references shipments(id),
  quantity integer not null check (quantity > 0),
  status text not null check (status in ('PENDING', 'SHIPPED', 'CANCELLED')),
  restocked boolean,
  primary key (order_id, sale_item_id)
);
create index shipment_lines_shipment on shipment_lines(shipment_id);
