-- Aggregates maintained on insert, so results, the bandit updater and analysts read
-- small tables instead of rescanning raw events (docs/analytics.md).
-- A materialized view sees every inserted row, redeliveries included (the consumers
-- dedup within a batch, not across batches), so every aggregate here is one that a
-- duplicate row cannot change: min/argMin and exact distinct counts of ids.

-- +goose Up
CREATE TABLE IF NOT EXISTS first_exposures (
    experiment String,
    user_id    String,
    first_ts   AggregateFunction(min, DateTime),
    variant    AggregateFunction(argMin, String, DateTime),
    segment    AggregateFunction(argMin, String, DateTime)
) ENGINE = AggregatingMergeTree()
ORDER BY (experiment, user_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS first_exposures_mv TO first_exposures AS
SELECT experiment, user_id,
       minState(ts) AS first_ts,
       argMinState(variant, ts) AS variant,
       argMinState(segment, ts) AS segment
FROM exposures
GROUP BY experiment, user_id;

CREATE TABLE IF NOT EXISTS daily_exposures (
    day        Date,
    experiment String,
    variant    String,
    exposures  AggregateFunction(uniqExact, UUID),
    users      AggregateFunction(uniqExact, String)
) ENGINE = AggregatingMergeTree()
PARTITION BY toYYYYMM(day)
ORDER BY (experiment, variant, day);

CREATE MATERIALIZED VIEW IF NOT EXISTS daily_exposures_mv TO daily_exposures AS
SELECT toDate(ts) AS day, experiment, variant,
       uniqExactState(event_id) AS exposures,
       uniqExactState(user_id) AS users
FROM exposures
GROUP BY day, experiment, variant;

CREATE TABLE IF NOT EXISTS daily_events (
    day    Date,
    type   String,
    events AggregateFunction(uniqExact, UUID),
    users  AggregateFunction(uniqExact, String)
) ENGINE = AggregatingMergeTree()
PARTITION BY toYYYYMM(day)
ORDER BY (type, day);

CREATE MATERIALIZED VIEW IF NOT EXISTS daily_events_mv TO daily_events AS
SELECT toDate(ts) AS day, type,
       uniqExactState(event_id) AS events,
       uniqExactState(user_id) AS users
FROM events
GROUP BY day, type;

-- +goose Down
DROP TABLE IF EXISTS daily_events_mv;
DROP TABLE IF EXISTS daily_events;
DROP TABLE IF EXISTS daily_exposures_mv;
DROP TABLE IF EXISTS daily_exposures;
DROP TABLE IF EXISTS first_exposures_mv;
DROP TABLE IF EXISTS first_exposures;
