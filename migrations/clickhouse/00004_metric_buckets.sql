-- Incremental results (docs/analytics.md, "How results stay fast"). Users are split
-- into 4096 buckets by cityHash64(user_id) % 4096; a user's metric depends only on
-- their own exposures and events, so a metric is the sum over buckets of the metric
-- within each bucket. metric_buckets keeps each metric's per-bucket aggregates with
-- the row counts they were computed from; bucket_rows counts the rows ever inserted
-- per experiment (exposures) or event type (events) and bucket. A materialized view
-- sees every inserted row, so a count only grows, redeliveries included: a bucket
-- whose counts have not moved holds the same rows as when it was computed, and only
-- buckets whose counts moved are computed again. Neither table holds user ids.

-- +goose Up
CREATE TABLE IF NOT EXISTS bucket_rows (
    source String,
    key    String,
    bucket UInt16,
    rows   UInt64
) ENGINE = SummingMergeTree()
ORDER BY (source, key, bucket);

CREATE MATERIALIZED VIEW IF NOT EXISTS exposure_bucket_rows_mv TO bucket_rows AS
SELECT 'exposures' AS source, experiment AS key, toUInt16(cityHash64(user_id) % 4096) AS bucket, count() AS rows
FROM exposures
GROUP BY key, bucket;

CREATE MATERIALIZED VIEW IF NOT EXISTS event_bucket_rows_mv TO bucket_rows AS
SELECT 'events' AS source, type AS key, toUInt16(cityHash64(user_id) % 4096) AS bucket, count() AS rows
FROM events
GROUP BY key, bucket;

-- One row per experiment, metric and bucket; the arrays hold one entry per
-- combination of multi-variant flag, variant, day and segment of first exposure.
-- The newest computation (version: when its counts were read) wins; read with FINAL.
CREATE TABLE IF NOT EXISTS metric_buckets (
    experiment    String,
    metric        String,
    bucket        UInt16,
    exposure_rows UInt64,
    event_rows    UInt64,
    generation    UInt64,
    version       UInt64,
    multi         Array(UInt8),
    variant       Array(String),
    day           Array(Date),
    segment       Array(String),
    users         Array(UInt64),
    conversions   Array(UInt64),
    value_sum     Array(Float64),
    value_sumsq   Array(Float64),
    pre_sum       Array(Float64),
    pre_sumsq     Array(Float64),
    pre_cross     Array(Float64),
    ipw_num       Array(Float64),
    ipw_den       Array(Float64)
) ENGINE = ReplacingMergeTree(version)
ORDER BY (experiment, metric, bucket);

-- +goose Down
DROP TABLE IF EXISTS metric_buckets;
DROP TABLE IF EXISTS event_bucket_rows_mv;
DROP TABLE IF EXISTS exposure_bucket_rows_mv;
DROP TABLE IF EXISTS bucket_rows;
