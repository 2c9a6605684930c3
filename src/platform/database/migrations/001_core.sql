-- Core schema: accounts, catalog, inventory, orders, and the messaging tables.
-- Each component owns its tables (prefix in the comment); no component reads another's.

-- accounts
create table users (
  id uuid primary key,
  email text not null unique,
  password_hash text not null,
  role text not null check (role in ('buyer', 'merchant', 'admin')),
  created_at timestamptz not null
);

create table shops (
  id uuid primary key,
  owner_id uuid not null unique references users(id),
  name text not null,
  created_at timestamptz not null
);

-- catalog
create table products (
  id uuid primary key,
  shop_id uuid not null references shops(id),
  name text not null,
  description text not null default '',
  price bigint not null check (price >= 0),
  currency text not null,
  created_at timestamptz not null
);
create index products_shop on products(shop_id, created_at);

create table flash_sales (
  id uuid primary key,
  shop_id uuid not null references shops(id),
  name text not null,
  starts_at timestamptz not null,
  ends_at timestamptz not null,
  payment_window_s integer not null check (payment_window_s > 0),
  hold_mode text not null check (hold_mode in ('order', 'cart')),
  currency text not null,
  created_at timestamptz not null,
  check (ends_at > starts_at)
);

create table sale_items (
  id uuid primary key,
  sale_id uuid not null references flash_sales(id),
  product_id uuid not null references products(id),
  flash_price bigint not null check (flash_price >= 0),
  stock integer not null check (stock > 0),
  per_user_limit integer not null check (per_user_limit > 0),
  unique (sale_id, product_id)
);

-- inventory: the stock row balances by construction; every term is guarded.
-- The sale window and limit are copied here so the gate can be rebuilt from inventory's own tables.
create table stock_items (
  sale_item_id uuid primary key,
  sale_id uuid not null,
  per_user_limit integer not null check (per_user_limit > 0),
  on_sale_from timestamptz not null,
  on_sale_until timestamptz not null,
  initial integer not null check (initial >= 0),
  available integer not null check (available >= 0),
  held integer not null check (held >= 0),
  sold integer not null check (sold >= 0),
  check (available + held + sold = initial)
);

create table holds (
  id uuid primary key,
  sale_item_id uuid not null,
  user_id uuid not null,
  quantity integer not null check (quantity > 0),
  status text not null check (status in ('held', 'sold', 'released')),
  kind text not null check (kind in ('order', 'cart')),
  order_id uuid,
  created_at timestamptz not null,
  expires_at timestamptz not null,
  released_at timestamptz,
  release_reason text
);
create index holds_user_item on holds(user_id, sale_item_id);
create index holds_order on holds(order_id) where order_id is not null;
create index holds_active_expiry on holds(expires_at) where status = 'held';

-- Per buyer and item: units held or sold. The CHECK is the database's own guard of the limit.
create table purchase_quotas (
  sale_item_id uuid not null,
  user_id uuid not null,
  quantity integer not null check (quantity >= 0),
  per_user_limit integer not null,
  primary key (sale_item_id, user_id),
  check (quantity <= per_user_limit)
);

-- order
create table orders (
  id uuid primary key,
  user_id uuid not null,
  sale_id uuid not null,
  status text not null check (status in ('PENDING_PAYMENT', 'PAID', 'FULFILLED', 'CANCELLED', 'EXPIRED')),
  total_amount bigint not null check (total_amount >= 0),
  currency text not null,
  created_at timestamptz not null,
  expires_at timestamptz not null,
  updated_at timestamptz not null,
  closed_reason text
);
create index orders_user on orders(user_id, created_at desc);
create index orders_pending_expiry on orders(expires_at) where status = 'PENDING_PAYMENT';

create table order_items (
  order_id uuid not null references orders(id),
  sale_item_id uuid not null,
  hold_id uuid not null,
  product_id uuid not null,
  quantity integer not null check (quantity > 0),
  unit_price bigint not null check (unit_price >= 0),
  primary key (order_id, sale_item_id)
);

-- platform: idempotency of mutating requests
create table idempotency_keys (
  user_key text not null,
  key text not null,
  request_hash text not null,
  status_code integer not null,
  response jsonb not null,
  created_at timestamptz not null,
  primary key (user_key, key)
);

-- platform: transactional outbox. A row is written in the same transaction as the change it reports.
create table outbox (
  seq bigint generated always as identity primary key,
  message_id uuid not null unique,
  topic text not null,
  payload jsonb not null,
  created_at timestamptz not null,
  deliver_after timestamptz not null,
  published_at timestamptz
);
create index outbox_unpublished on outbox(deliver_after, seq) where published_at is null;

-- platform: the embedded broker's durable queue, one row per (consumer, message).
create table deliveries (
  consumer text not null,
  message_id uuid not null,
  topic text not null,
  payload jsonb not null,
  status text not null check (status in ('pending', 'done', 'dead')),
  attempts integer not null default 0,
  next_attempt_at timestamptz not null,
  last_error text,
  created_at timestamptz not null,
  updated_at timestamptz not null,
  primary key (consumer, message_id)
);
create index deliveries_due on deliveries(next_attempt_at) where status = 'pending';
create index deliveries_dead on deliveries(updated_at) where status = 'dead';

-- platform: consumer idempotency, written in the same transaction as the consumer's effect.
create table processed_messages (
  consumer text not null,
  message_id uuid not null,
  processed_at timestamptz not null,
  primary key (consumer, message_id)
);
