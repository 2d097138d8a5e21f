-- Dead letters as recorded for the dashboard (docs/analytics.md): a copy of every
-- message routed to lift.dlx, taken from the queue lift.dead.log, so that lift.dead
-- itself is never read, reordered or drained by lift. id hashes the message's time,
-- routing key, reason and body: a copy recorded twice (redelivered after a crash) has
-- the same id and readers collapse it. seq numbers the copies in the order the log
-- received them, which is lift.dead's order (one consumer at a time reads the log
-- queue); readers sort by it. user_id is the body's user_id when it has one.
-- Runs on ClickHouse 18.16 and current releases (no TTL: old months are dropped with
-- ALTER TABLE dead_letters DROP PARTITION).

-- +goose Up
CREATE TABLE IF NOT EXISTS dead_letters (
    at          DateTime,
    id          UInt64,
    seq         UInt64,
    routing_key String,
    reason      String,
    user_id     String,
    body        String
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(at)
ORDER BY (at, id);

-- +goose Down
DROP TABLE IF EXISTS dead_letters;
