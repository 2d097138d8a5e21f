// Package chstore computes experiment results from the exposures and events lift
// stores in ClickHouse: per variant (and per day or segment of first exposure) the
// users, conversions and value sums of a metric, with CUPED's pre-exposure sums and
// the inverse-propensity sums bandit reports need. It implements
// experiments.EventStore and experiments.MetricsReader. The SQL runs on ClickHouse
// 18.16 and current releases.
//
// # Data flow
//
// A user's metric depends only on their own rows: their first exposure (the smallest
// (ts, variant, segment, assignment_probability)), whether they saw several variants,
// and their events of the metric's type in the attribution window after it (and in
// the 14 days before it, for CUPED). So a metric is a sum over users, and over any
// partition of the users. Users fall into 65,536 buckets by cityHash64(user_id) %
// 65536 (the exposures' and events' materialized column bucket, by which both tables
// are sorted) and each bucket into four leaves: 262,144 leaves in all.
//
//	exposures, events ──(materialized views)──▶ bucket_rows: rows ever inserted per leaf
//	exposures, events ──(leafSQL, per leaf)───▶ metric_nodes level 0: a leaf's aggregates
//	leaves ──(sum, updated by differences)────▶ metric_nodes level 1: the root
//	root ──(aggregates)──▶ experiments.MetricData
//
// metric_nodes keeps, per experiment and metric (a key naming the kind, event type,
// window, condition and sqlVersion), one row per leaf that ever had rows and one
// root, the sum of every leaf. Each row carries a stamp: the leaf's row counts from
// bucket_rows when it was computed (summed, for the root) and the generation, a
// fingerprint of the finished mutations and the partitions of exposures and events.
// Each row also carries a version, the time of the refresh that wrote it; the newest
// version of a row wins (ReplacingMergeTree, read with FINAL). The root records, for
// every leaf, the counts and the version of the leaf row it sums (leaf_stamps).
//
// # A read and a refresh
//
// MetricAggregates reads the experiment's total counts and the root: when the root's
// stamp equals them, the root is the answer (one row, however large the experiment).
// Otherwise, and always for MetricsAggregates, which brings all the metrics of one
// experiment and event type up to date in one pass, a refresh:
//
//  1. reads the counts of every leaf and the roots with their leaves' stamps;
//  2. marks the leaves whose counts differ from those a root records (every leaf it
//     sums, after a change of generation, and every leaf with rows it lacks);
//  3. computes those leaves for every metric at once, in chunks of leaves, while
//     reading the versions of the same leaves the roots sum;
//  4. adds to each root the difference between the new and the old aggregates of
//     those leaves, and records the new counts and version;
//  5. stores each chunk's leaves, the last chunk's in one insert with the roots.
//
// So a refresh costs in proportion to the leaves that received rows, not to the
// experiment. Summing each root from every stored leaf at every refresh would need
// no versions, but measured 3.5 s for three metrics over 10,000,000 exposures on
// 18.16, against a budget of 1 s for the whole results call (docs/analytics.md).
//
// # Invariants
//
//   - Counts only grow: a view sees every inserted row, duplicates included. A leaf
//     whose counts have not moved holds the same rows as when it was computed (deletions
//     change the generation instead). Counts are read before the rows they stamp, so a
//     stamp never claims rows its aggregates lack.
//   - A root is the sum of the leaf versions it names, whatever else was stored since
//     (another process refreshing at once, a refresh stopped between inserts): the
//     difference it adds is exact. If a version it names is gone (merged away under a
//     newer one), the root is summed again from every stored leaf.
//   - A root is current when its stamp equals the counts now: counts only grow and the
//     root's stamp is the sum of its leaves' stamps, each a past reading of them.
//   - Hence every answer covers every row stored before the call, exactly. TestModel
//     and TestBucketsMatchGroundTruth check answers against the same metrics computed
//     in Go from the rows inserted.
//
// # Files
//
// chstore.go holds the Store and its API; metric.go the metric keys; tree.go the
// arithmetic of leaves and roots, with the one sum of aggregates (entry.addScaled);
// refresh.go the protocol above; nodes.go the reading and writing of rows; sql.go
// every query; where.go the SQL of property conditions; pack.go the compact formats
// of a leaf's aggregates and a root's leaf stamps. docs/analytics.md ("How results
// stay fast") describes the tables and the costs.
package chstore
