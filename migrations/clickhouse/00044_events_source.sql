-- Where each event entered lift (docs/privacy.md, "Linked ids"): the collector with a
-- client key (public, so anyone can send anything with it), the collector with a
-- server key, or a backend publishing to RabbitMQ. lift sets it, never the event.
-- Export and erasure follow the identity links of $identify events only from server
-- keys and backends. Rows stored before this column existed are 'unknown', hence not
-- trusted: any of them could have been sent with a client key.

-- +goose Up
ALTER TABLE events ADD COLUMN source Enum8('unknown' = 0, 'client' = 1, 'server' = 2, 'amqp' = 3) DEFAULT 'unknown';

-- +goose Down
ALTER TABLE events DROP COLUMN source;
