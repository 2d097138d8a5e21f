-- Incremental results (docs/analytics.md, "How results stay fast").
--
-- Users are split into 65,536 buckets by cityHash64(user_id) % 65536. A user's metric
-- depends only on their own exposures and events, so a metric is the sum over buckets
-- of the metric within each bucket. metric_nodes keeps each metric's aggregates per
-- bucket (level 0) and, for reading, sums of 16 buckets (level 1), of 16 of those
-- (level 2), and so on up to one row for everything (level 4), each with the row
-- counts it was computed from. bucket_rows counts the rows ever inserted per
-- experiment (exposures) or event type (events) and bucket: a materialized view sees
-- every inserted row, so a count only grows, redeliveries included, and a bucket whose
-- count has not moved holds the same rows as when it was computed. Only buckets whose
-- counts moved, and the sums above them, are computed again. Neither table holds user
-- ids.
--
-- exposures and events are rebuilt sorted by (experiment or type, bucket, user_id,
-- event_id) with 256-row granules, so that the rows of a few buckets are read
-- without scanning the rest (a bucket of a 10,000,000-row table is about 150 rows). The materialized column bucket is not part of SELECT *
-- and inserts need not name it. Rows inserted while this migration copies the tables
-- are kept; stop ingestion while it runs anyway, since the aggregate views are
-- recreated around the rename.

-- +goose Up
CREATE TABLE IF NOT EXISTS exposures_v4 (
    event_id               UUID,
    ts                     DateTime,
    user_id                String,
    experiment             String,
    variant                String,
    segment                String,
    assignment_probability Float64,
    bucket                 UInt16 MATERIALIZED toUInt16(cityHash64(user_id) % 65536)
) ENGINE = ReplacingMergeTree(ts)
PARTITION BY toYYYYMM(ts)
ORDER BY (experiment, bucket, user_id, event_id)
SETTINGS index_granularity = 256;

CREATE TABLE IF NOT EXISTS events_v4 (
    event_id    UUID,
    type        String,
    user_id     String,
    ts          DateTime,
    received_at DateTime,
    value       Float64,
    properties  String,
    personalization UInt8 DEFAULT 1,
    bucket      UInt16 MATERIALIZED toUInt16(cityHash64(user_id) % 65536)
) ENGINE = ReplacingMergeTree(received_at)
PARTITION BY toYYYYMM(ts)
ORDER BY (type, bucket, user_id, event_id)
SETTINGS index_granularity = 256;

DROP TABLE IF EXISTS first_exposures_mv;
DROP TABLE IF EXISTS daily_exposures_mv;
DROP TABLE IF EXISTS daily_events_mv;

RENAME TABLE exposures TO exposures_v1, exposures_v4 TO exposures, events TO events_v1, events_v4 TO events;

CREATE TABLE IF NOT EXISTS bucket_rows (
    source String,
    key    String,
    bucket UInt16,
    rows   UInt64
) ENGINE = SummingMergeTree()
ORDER BY (source, key, bucket);

CREATE MATERIALIZED VIEW IF NOT EXISTS exposure_bucket_rows_mv TO bucket_rows AS
SELECT 'exposures' AS source, experiment AS key, toUInt16(cityHash64(user_id) % 65536) AS bucket, count() AS rows
FROM exposures
GROUP BY key, bucket;

CREATE MATERIALIZED VIEW IF NOT EXISTS event_bucket_rows_mv TO bucket_rows AS
SELECT 'events' AS source, type AS key, toUInt16(cityHash64(user_id) % 65536) AS bucket, count() AS rows
FROM events
GROUP BY key, bucket;

-- The views of 00002_aggregates.sql, on the rebuilt tables. (00020 added
-- personalization to events; the rebuilt table keeps it. A migration adding columns
-- to events or exposures after this one needs nothing special.)
CREATE MATERIALIZED VIEW IF NOT EXISTS first_exposures_mv TO first_exposures AS
SELECT experiment, user_id,
       minState(ts) AS first_ts,
       argMinState(variant, ts) AS variant,
       argMinState(segment, ts) AS segment
FROM exposures
GROUP BY experiment, user_id;

CREATE MATERIALIZED VIEW IF NOT EXISTS daily_exposures_mv TO daily_exposures AS
SELECT toDate(ts) AS day, experiment, variant,
       uniqExactState(event_id) AS exposures,
       uniqExactState(user_id) AS users
FROM exposures
GROUP BY day, experiment, variant;

CREATE MATERIALIZED VIEW IF NOT EXISTS daily_events_mv TO daily_events AS
SELECT toDate(ts) AS day, type,
       uniqExactState(event_id) AS events,
       uniqExactState(user_id) AS users
FROM events
GROUP BY day, type;

-- Through the views: every aggregate they feed ignores rows it has seen already.
INSERT INTO exposures (event_id, ts, user_id, experiment, variant, segment, assignment_probability)
SELECT event_id, ts, user_id, experiment, variant, segment, assignment_probability FROM exposures_v1;

INSERT INTO events (event_id, type, user_id, ts, received_at, value, properties, personalization)
SELECT event_id, type, user_id, ts, received_at, value, properties, personalization FROM events_v1;

DROP TABLE IF EXISTS exposures_v1;
DROP TABLE IF EXISTS events_v1;

-- One row per experiment, metric, level and node (a bucket at level 0; node n of
-- level k sums buckets 16^k·n … 16^k·(n+1) − 1). The arrays hold one entry per
-- combination of multi-variant flag, variant, day and segment of first exposure.
-- exposure_rows and event_rows are the bucket_rows counts summed over the node's
-- buckets when they were computed, generation fingerprints mutations and partitions.
-- Nodes whose buckets never received a row are not stored. The newest computation (version: when its counts
-- were read) wins; read with FINAL.
CREATE TABLE IF NOT EXISTS metric_nodes (
    experiment    String,
    metric        String,
    level         UInt8,
    node          UInt16,
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
ORDER BY (experiment, metric, level, node)
SETTINGS index_granularity = 64; -- rows are large (arrays) and read a few at a time

-- +goose Down
DROP TABLE IF EXISTS metric_nodes;
DROP TABLE IF EXISTS event_bucket_rows_mv;
DROP TABLE IF EXISTS exposure_bucket_rows_mv;
DROP TABLE IF EXISTS bucket_rows;
DROP TABLE IF EXISTS first_exposures_mv;
DROP TABLE IF EXISTS daily_exposures_mv;
DROP TABLE IF EXISTS daily_events_mv;

CREATE TABLE IF NOT EXISTS exposures_v1 (
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

CREATE TABLE IF NOT EXISTS events_v1 (
    event_id    UUID,
    type        String,
    user_id     String,
    ts          DateTime,
    received_at DateTime,
    value       Float64,
    properties  String,
    personalization UInt8 DEFAULT 1
) ENGINE = ReplacingMergeTree(received_at)
PARTITION BY toYYYYMM(ts)
ORDER BY (type, user_id, event_id);

RENAME TABLE exposures TO exposures_v4, exposures_v1 TO exposures, events TO events_v4, events_v1 TO events;

CREATE MATERIALIZED VIEW IF NOT EXISTS first_exposures_mv TO first_exposures AS
SELECT experiment, user_id,
       minState(ts) AS first_ts,
       argMinState(variant, ts) AS variant,
       argMinState(segment, ts) AS segment
FROM exposures
GROUP BY experiment, user_id;

CREATE MATERIALIZED VIEW IF NOT EXISTS daily_exposures_mv TO daily_exposures AS
SELECT toDate(ts) AS day, experiment, variant,
       uniqExactState(event_id) AS exposures,
       uniqExactState(user_id) AS users
FROM exposures
GROUP BY day, experiment, variant;

CREATE MATERIALIZED VIEW IF NOT EXISTS daily_events_mv TO daily_events AS
SELECT toDate(ts) AS day, type,
       uniqExactState(event_id) AS events,
       uniqExactState(user_id) AS users
FROM events
GROUP BY day, type;

INSERT INTO exposures (event_id, ts, user_id, experiment, variant, segment, assignment_probability)
SELECT event_id, ts, user_id, experiment, variant, segment, assignment_probability FROM exposures_v4;

INSERT INTO events (event_id, type, user_id, ts, received_at, value, properties, personalization)
SELECT event_id, type, user_id, ts, received_at, value, properties, personalization FROM events_v4;

DROP TABLE IF EXISTS exposures_v4;
DROP TABLE IF EXISTS events_v4;
