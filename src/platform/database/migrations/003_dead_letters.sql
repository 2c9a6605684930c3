-- platform: the RabbitMQ broker's record of dead letters (the in-process broker keeps its own in
-- `deliveries`). RabbitMQ holds a dead letter in the consumer's dead-letter queue only until the
-- broker's recorder has copied it here: this table is what admins list, inspect and replay.
-- message_id is text, not uuid: a message from a foreign publisher must still be recordable.
create table dead_letters (
  consumer text not null,
  message_id text not null,
  topic text not null,
  payload jsonb not null,
  attempts integer not null,
  last_error text,
  dead_at timestamptz not null,
  replayed_at timestamptz,
  primary key (consumer, message_id)
);
create index dead_letters_open on dead_letters(dead_at) where replayed_at is null;
