-- Feature values for training and analysis (docs/recommendations.md,
-- docs/analytics.md): one row per new value of a user's feature, written by the
-- segment engine. Runs on ClickHouse 18.16 and current releases: no DateTime64, Map,
-- JSON, TTL or LowCardinality. The engine publishes the values since its last
-- checkpoint again after a restart; ReplacingMergeTree collapses them on (feature,
-- user_id, ts), so read with FINAL for exact figures. value is the JSON text of the
-- value ('' when no event is left in the window: the feature's default).

-- +goose Up
CREATE TABLE IF NOT EXISTS feature_values (
    ts          DateTime,
    ts_ms       UInt16,
    user_id     String,
    feature     String,
    value       String,
    recorded_at DateTime
) ENGINE = ReplacingMergeTree(recorded_at)
PARTITION BY toYYYYMM(ts)
ORDER BY (feature, user_id, ts, ts_ms);

-- +goose Down
DROP TABLE IF EXISTS feature_values;
