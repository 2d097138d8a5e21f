-- Behavioural segment membership changes for analysts (docs/analytics.md,
-- docs/segments.md): one row per enter or exit, written by the segment engine.
-- Runs on ClickHouse 18.16 and current releases: no DateTime64, Map, JSON, TTL or
-- LowCardinality. The engine emits the changes since its last checkpoint again after
-- a restart; ReplacingMergeTree collapses them on (segment, user_id, kind, ts), so
-- read with FINAL for exact counts.

-- +goose Up
CREATE TABLE IF NOT EXISTS segment_changes (
    ts          DateTime,
    user_id     String,
    segment     String,
    kind        String,
    expires_at  DateTime,
    recorded_at DateTime
) ENGINE = ReplacingMergeTree(recorded_at)
PARTITION BY toYYYYMM(ts)
ORDER BY (segment, user_id, kind, ts);

-- +goose Down
DROP TABLE IF EXISTS segment_changes;
