-- Raw event storage for analysts (docs/analytics.md, docs/storage.md).
-- Runs on ClickHouse 18.16 and current releases: no DateTime64, Map, JSON, TTL or
-- LowCardinality. ReplacingMergeTree collapses redelivered events with the same
-- event_id; read with FINAL for exact counts.

-- +goose Up
CREATE TABLE IF NOT EXISTS events (
    event_id    UUID,
    type        String,
    user_id     String,
    ts          DateTime,
    received_at DateTime,
    value       Float64,
    properties  String
) ENGINE = ReplacingMergeTree(received_at)
PARTITION BY toYYYYMM(ts)
ORDER BY (type, user_id, event_id);

CREATE TABLE IF NOT EXISTS exposures (
    event_id               UUID,
    ts                     DateTime,
    user_id                String,
    experiment             String,
    variant                String,
    segment                String,
    assignment_probability Float64
) ENGINE = ReplacingMergeTree(ts)
PARTITION BY toYYYYMM(ts)
ORDER BY (experiment, user_id, event_id);

-- +goose Down
DROP TABLE IF EXISTS exposures;
DROP TABLE IF EXISTS events;
