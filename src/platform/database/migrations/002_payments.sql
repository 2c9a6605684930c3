-- Payments, refunds, webhook dedupe, notifications; units written off by an admin cancel.

-- inventory: units taken off sale (a paid order cancelled without restock) stay accounted for.
alter table stock_items add column written_off integer not null default 0 check (written_off >= 0);
alter table stock_items drop constraint stock_items_check;
alter table stock_items add constraint stock_items_balanced check (available + held + sold + written_off = initial);
alter table holds drop constraint holds_status_check;
alter table holds add constraint holds_status_check check (status in ('held', 'sold', 'released', 'written_off'));

-- payment: one payment (one provider intent) per order; a succeeded payment is the order's capture.
create table payments (
  id uuid primary key,
  order_id uuid not null unique,
  user_id uuid,
  provider_intent_id text not null unique,
  amount bigint not null check (amount > 0),
  currency text not null,
  status text not null check (status in ('pending', 'succeeded', 'failed', 'canceled')),
  last_error text,
  created_at timestamptz not null,
  updated_at timestamptz not null
);

-- One refund per payment, always of the whole amount; the provider call is keyed by payment id.
create table refunds (
  id uuid primary key,
  payment_id uuid not null unique references payments(id),
  order_id uuid not null,
  provider_refund_id text unique,
  amount bigint not null check (amount > 0),
  reason text not null,
  status text not null check (status in ('pending', 'succeeded')),
  created_at timestamptz not null,
  updated_at timestamptz not null
);

create table webhook_events (
  event_id text primary key,
  type text not null,
  received_at timestamptz not null
);

-- notification: one row per (event, channel); the unique key is what makes "never two" hold.
create table notifications (
  id uuid primary key,
  event_id uuid not null,
  user_id uuid not null,
  kind text not null,
  channel text not null check (channel in ('email', 'in_app')),
  recipient text,
  subject text not null,
  body text not null,
  status text not null check (status in ('pending', 'sent')),
  created_at timestamptz not null,
  sent_at timestamptz,
  unique (event_id, channel)
);
create index notifications_user on notifications(user_id, created_at desc);
