-- The relay takes the oldest due rows in seq order. With only (deliver_after, seq) to go by, it sorted
-- every due row on each pass (20,000 of them after a rush, ~25 ms on PGlite); in seq order it reads
-- the first rows and skips the delayed ones (payment deadlines) until it has a batch.
create index outbox_unpublished_by_seq on outbox(seq) where published_at is null;
