-- The tables every baseline keeps, created in the run's own schema (the pool's search_path is the
-- run's namespace, so nothing here names a schema).

-- No CHECK (remaining >= 0): a baseline must keep stock by its own logic, and check-then-update
-- must be free to drive it below zero, as it would in production.
create table stock (
  id             uuid primary key,
  initial        integer not null,
  remaining      integer not null,
  per_user_limit integer not null
);

-- One line per order: the purchase route takes exactly one line.
create table orders (
  id         uuid primary key,
  item_id    uuid not null references stock (id),
  user_id    text not null,
  quantity   integer not null,
  created_at timestamptz not null default now()
);

create index orders_item_user on orders (item_id, user_id);
