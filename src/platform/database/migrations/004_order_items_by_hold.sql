-- A cart may hold one sale item twice (two adds within the per-buyer limit); checkout turns each
-- hold into its own order line, so a line is identified by its hold, not by its sale item.
alter table order_items drop constraint order_items_pkey;
alter table order_items add primary key (order_id, hold_id);
