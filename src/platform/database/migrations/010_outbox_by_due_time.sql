-- The relays now take due rows in (deliver_after, seq) order, a range of outbox_unpublished that
-- stops at the batch size. In seq order (009) each pass stepped over every delayed row (the two
-- payment-deadline messages of each open order: 8,000 after a 4,000-order rush, ~20 ms a pass on
-- PGlite); the index that served it is one more to update on every outbox insert.
drop index if exists outbox_unpublished_by_seq;
