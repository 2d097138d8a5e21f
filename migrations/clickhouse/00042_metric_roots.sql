-- metric_nodes keeps each metric per leaf bucket (level 0) and one root, the sum of
-- every leaf (level 1, node 0), which a refresh updates by the difference of the
-- leaves it computes again; the sums of 16, 256 and 4,096 leaves that 00041 also kept
-- are gone (experiments/chstore, sqlVersion 2). A leaf's aggregates are kept in
-- packed, one String (experiments/chstore/pack.go), and its arrays left empty: a
-- refresh reads about a thousand leaves scattered over the table, which costs
-- ClickHouse per column read. The root keeps the arrays, for SQL readers, and
-- records in leaf_stamps, packed likewise, the counts and the version of each leaf
-- it sums (empty in leaves), so that it is always the sum of known versions of its
-- leaves and a refresh reads one row to know which leaves to compute.
--
-- The rows are a cache of what exposures and events hold: emptying the table costs
-- one full computation of each metric at its next read, and drops the rows of the
-- old layout, which nothing reads any more.

-- +goose Up
ALTER TABLE metric_nodes ADD COLUMN packed String AFTER generation;
ALTER TABLE metric_nodes ADD COLUMN leaf_stamps String;
TRUNCATE TABLE metric_nodes;

-- +goose Down
ALTER TABLE metric_nodes DROP COLUMN leaf_stamps;
ALTER TABLE metric_nodes DROP COLUMN packed;
TRUNCATE TABLE metric_nodes;
