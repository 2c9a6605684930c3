-- Sale management (edit, cancel, add stock), merchant notices, and SMS as a second channel.

-- catalog: a sale can be cancelled; every change bumps its version, so each API process's warm
-- copy is refreshed from `updated_at` (not only new sales).
alter table flash_sales add column cancelled_at timestamptz;
alter table flash_sales add column updated_at timestamptz;
update flash_sales set updated_at = created_at;
alter table flash_sales alter column updated_at set not null;
alter table flash_sales add column version integer not null default 1;
create index flash_sales_updated on flash_sales(updated_at);

-- accounts: a buyer's phone number (E.164), set only by the buyer opting in to SMS notices.
alter table users add column phone text;

-- notification: the SMS channel.
alter table notifications drop constraint notifications_channel_check;
alter table notifications add constraint notifications_channel_check check (channel in ('email', 'in_app', 'sms'));

-- order: a cancelled sale's orders are found by sale.
create index orders_sale_status on orders(sale_id, status);
