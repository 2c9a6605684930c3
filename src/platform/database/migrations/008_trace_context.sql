-- Tracing (docs/operations.md#following-one-order-through-its-trace): the W3C traceparent of the
-- span that wrote each event, so the relay and the consumers continue its trace in whichever
-- process runs them; the in-process broker's deliveries carry it on to the consumer. An order keeps
-- its purchase's traceparent, so that its payment, its webhook and its close join that trace.
-- Null while tracing is off.
alter table outbox add column traceparent text;
alter table deliveries add column traceparent text;
alter table orders add column traceparent text;
