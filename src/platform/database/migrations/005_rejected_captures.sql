-- payment: a capture that cannot pay its order (wrong amount or currency, an unknown order, a second
-- intent for an order that has one) is recorded here and refunded in full, never dropped.
create table rejected_captures (
  provider_intent_id text primary key,
  order_id text not null,
  amount bigint not null check (amount > 0),
  currency text not null,
  reason text not null check (reason in ('amount_mismatch', 'currency_mismatch', 'unknown_order', 'second_intent')),
  status text not null check (status in ('refund_pending', 'refunded', 'not_captured')),
  provider_refund_id text unique,
  created_at timestamptz not null,
  refunded_at timestamptz
);

-- The provider's hosted page of each payment, so a repeated pay call answers without asking the provider.
alter table payments add column hosted_url text;
