-- Tracing: the RabbitMQ broker's dead letters keep the W3C traceparent their message carried (the
-- AMQP header), so a replay continues the trace the event was written in instead of starting a new
-- one (the in-process broker's `deliveries` row already keeps it, migration 008). Null while
-- tracing is off.
alter table dead_letters add column traceparent text;
