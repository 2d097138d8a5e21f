-- Several segment engine processes (docs/segments.md#sharding): checkpoints are per
-- shard and record the position in the shard's stream they correspond to and the
-- shard count that split the users; the router records how far it has split
-- lift.segments into the shard streams.

-- +goose Up
-- Checkpoints of the single engine read a queue, not a stream: they cannot be
-- resumed. The engine rebuilds its state from ClickHouse instead.
DELETE FROM segment_checkpoints;
ALTER TABLE segment_checkpoints
    ADD COLUMN shards integer NOT NULL DEFAULT 1,
    ADD COLUMN stream_offset bigint NOT NULL DEFAULT -1;

CREATE TABLE segment_router (
    id            boolean PRIMARY KEY DEFAULT true CHECK (id),
    -- The last lift.segments offset whose events are confirmed in the shard streams.
    source_offset bigint NOT NULL,
    saved_at      timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE segment_router;
ALTER TABLE segment_checkpoints DROP COLUMN shards, DROP COLUMN stream_offset;
