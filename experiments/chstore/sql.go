package chstore

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/liftlab/lift/internal/chconn"

	"github.com/liftlab/lift/experiments"
)

// The SQL of the engine, all of it, and the builders that fill it in. It runs on
// ClickHouse 18.16 as well as current releases, which shapes it: no JSONExtract
// (where.go), lambdas that cannot see a row's other columns, aliases that must differ
// from column names, and scalar subqueries avoided (see leafSQL and eventsFrom).

// leafOf is the SQL of the leaf of the user in column col: the four leaves of bucket
// b are 4b … 4b + 3, so that a query reads them by the sort key (migration 00043).
func leafOf(col string) string {
	return fmt.Sprintf("toUInt32(cityHash64(%[1]s) %% 65536 * 4 + intDiv(cityHash64(%[1]s), 65536) %% 4)", col)
}

// leafSQL computes metrics of one experiment and event type within some leaves in
// one pass over the experiment's exposures and the events of those leaves, grouped
// by user: the first exposure (the smallest (ts, variant, segment,
// probability), so that ties are broken the same way every time), whether the user
// saw more than one variant (min ≠ max), and the user's events kept in arrays with,
// per event, a bit per metric whose property condition it meets. From those arrays
// {outcomes} derives each metric's outcome within its attribution window after the
// first exposure and CUPED's covariate (the same metric in the pre-exposure period),
// and {sums} sums them with the inverse-propensity sums Σ y/p and Σ 1/p, p being the
// probability logged with the first exposure, which bandit reports need. One GROUP
// BY instead of a join keeps it fast; FINAL drops redelivered duplicates of events
// (duplicate exposures change none of min and max). Events older than the
// pre-period of the experiment's first day cannot count and are skipped
// (eventsFrom). The result is one row per leaf and combination of multi-variant
// flag, variant, day ({day}: 1970-01-01 unless a metric is Daily) and segment of
// first exposure.
// The users are grouped by (leaf, user_id), not by user_id alone: the rows of a chunk
// are those of some buckets, whose user ids have a cityHash64 in a narrow range, and
// ClickHouse 18.16 hashes a String key with CityHash64 too, so a hash table keyed by
// user_id alone puts the users of a range of buckets into a few clustered slots (on
// the benchmark's 10,000,000 exposures, 2.9 s of CPU per sixteenth instead of 0.6 s).
// Notes for ClickHouse 18.16: lambdas there cannot see the row's other columns, so
// the first-exposure time is passed in as an array (replicate); and every alias
// differs from the column names, because 18.16 resolves a reused alias at an outer
// level to the inner expression.
const leafSQL = `
SELECT ulf AS lf, is_multi, arm, day1, seg, count() AS n, sum(if(prob > 0, 1 / prob, 0)) AS i_den{sums}
FROM (
    SELECT ulf, toUInt8(vmin != vmax) AS is_multi,
           tupleElement(fe, 2) AS arm, {day} AS day1, tupleElement(fe, 3) AS seg, tupleElement(fe, 4) AS prob,
           replicate(fts, ets) AS efts{outcomes}
    FROM (
        SELECT row_leaf AS ulf, user_id AS uid,
               minIf((ts, variant, segment, p_assign), is_exp = 1) AS fe,
               tupleElement(fe, 1) AS fts,
               minIf(variant, is_exp = 1) AS vmin,
               maxIf(variant, is_exp = 1) AS vmax,
               countIf(is_exp = 1) AS nexp,
               groupArrayIf(ts, is_exp = 0) AS ets,
               groupArrayIf(val, is_exp = 0) AS evals,
               groupArrayIf(bits, is_exp = 0) AS ebits
        FROM (
            SELECT {leaf} AS row_leaf, user_id, variant, ts, segment, 1 AS is_exp, toFloat64(0) AS val, materialize(toUInt64(0)) AS bits, assignment_probability AS p_assign
            FROM exposures
            WHERE experiment = ? AND {leaves}
            UNION ALL
            SELECT {leaf} AS row_leaf, user_id, '' AS variant, ts, '' AS segment, 0 AS is_exp, value AS val, materialize(toUInt64({bits})) AS bits, toFloat64(0) AS p_assign
            FROM events FINAL
            WHERE type = ? AND {leaves} AND ts >= toDateTime(?) AND ({any})
        )
        GROUP BY ulf, uid
        HAVING nexp > 0
    )
)
GROUP BY ulf, is_multi, arm, day1, seg`

// leafQuery is leafSQL for metrics ms (at most maxTogether, one event type) and the
// leaves of chunk. Metric k's events are those with bit k set; its outcome y_k is
// whether the user converted within the window (conversions) or the sum of values
// there (values), its covariate x_k the same before exposure.
func leafQuery(ms []metric, chunk []uint32) string {
	var bits, anyWhere []string
	var outcomes, sums strings.Builder
	daily := false
	for k, m := range ms {
		mask := uint64(1) << k
		bits = append(bits, fmt.Sprintf("if(%s, %d, 0)", m.where, mask))
		anyWhere = append(anyWhere, m.where)
		daily = daily || m.q.Daily
		in := func(from, to string) string { // t within [f+from, f+to) and the event is the metric's
			return fmt.Sprintf("bitAnd(g, %d) != 0 AND t >= f%s AND t < f%s", mask, from, to)
		}
		window := "+" + strconv.FormatInt(int64(m.q.Window/time.Second), 10)
		pre := "-" + strconv.FormatUint(uint64(preSeconds), 10)
		// As before sqlVersion 2: conversions count users with an event in the
		// window, values sum those events' values (for either kind), y is the outcome.
		fmt.Fprintf(&outcomes, `,
           arrayExists((t, g, f) -> %[1]s, ets, ebits, efts) AS c%[2]d,
           arraySum(arrayMap((t, v, g, f) -> if(%[1]s, v, 0), ets, evals, ebits, efts)) AS v%[2]d,`, in("", window), k)
		if m.q.Kind == "conversion" {
			fmt.Fprintf(&outcomes, `
           toFloat64(c%[2]d) AS y%[2]d, toFloat64(arrayExists((t, g, f) -> %[1]s, ets, ebits, efts)) AS x%[2]d`, in(pre, ""), k)
		} else {
			fmt.Fprintf(&outcomes, `
           v%[2]d AS y%[2]d, arraySum(arrayMap((t, v, g, f) -> if(%[1]s, v, 0), ets, evals, ebits, efts)) AS x%[2]d`, in(pre, ""), k)
		}
		fmt.Fprintf(&sums, `,
       sum(c%[1]d) AS n%[1]d, sum(v%[1]d) AS s%[1]d, sum(v%[1]d * v%[1]d) AS q%[1]d, sum(x%[1]d) AS ps%[1]d,
       sum(x%[1]d * x%[1]d) AS pq%[1]d, sum(x%[1]d * y%[1]d) AS pc%[1]d, sum(if(prob > 0, y%[1]d / prob, 0)) AS in%[1]d`, k)
	}
	day := "toDate(0)"
	if daily {
		day = "toDate(fts)"
	}
	return strings.NewReplacer("{sums}", sums.String(), "{outcomes}", outcomes.String(), "{day}", day,
		"{bits}", strings.Join(bits, " + "), "{any}", strings.Join(anyWhere, " OR "),
		"{leaves}", leafFilter(chunk), "{leaf}", leafOf("user_id")).Replace(leafSQL)
}

// rowsSQL reads how many rows the experiment's exposures and the event type have
// received, in all (rows is the sum of rows_0 … rows_3: a view writes all five).
const rowsSQL = `
SELECT sumIf(rows, source = 'exposures') AS x_rows, sumIf(rows, source = 'events') AS e_rows
FROM bucket_rows
WHERE (source = 'exposures' AND key = ?) OR (source = 'events' AND key = ?)`

// leafRowsSQL reads the same per leaf: the four of each bucket.
const leafRowsSQL = `
SELECT bucket,
       sumIf(rows_0, source = 'exposures'), sumIf(rows_1, source = 'exposures'),
       sumIf(rows_2, source = 'exposures'), sumIf(rows_3, source = 'exposures'),
       sumIf(rows_0, source = 'events'), sumIf(rows_1, source = 'events'),
       sumIf(rows_2, source = 'events'), sumIf(rows_3, source = 'events')
FROM bucket_rows
WHERE (source = 'exposures' AND key = ?) OR (source = 'events' AND key = ?)
GROUP BY bucket`

// generationSQL fingerprints what changes data without inserting rows: finished
// mutations (ALTER TABLE … DELETE, as erasure does) and the partitions (retention
// drops whole months), each with the smallest block number of its parts. Merges and
// mutations keep that number, but a partition dropped and then made again by a late
// row starts at a new one (block numbers only grow), so the drop still shows. A new
// month also changes it, which costs one full computation of every metric a month.
const generationSQL = `
SELECT cityHash64(
    (SELECT arrayStringConcat(arraySort(groupArray(part_key)), ',')
     FROM (SELECT concat(table, '/', partition_id, '/', toString(min(min_block_number))) AS part_key
           FROM system.parts WHERE database = currentDatabase() AND table IN ('events', 'exposures') AND active
           GROUP BY table, partition_id)),
    (SELECT arrayStringConcat(arraySort(groupArray(concat(table, '/', mutation_id))), ',')
     FROM system.mutations WHERE database = currentDatabase() AND table IN ('events', 'exposures') AND is_done = 1))`

// localLeafQuery is a leafQuery reading a shard's local tables.
func localLeafQuery(query string) string {
	return strings.NewReplacer("FROM exposures\n", "FROM exposures_local\n", "FROM events FINAL\n", "FROM events_local FINAL\n").Replace(query)
}

// clusterGenerationSQL is generationSQL on a cluster, where exposures and events are
// Distributed tables over exposures_local and events_local and system.parts and
// system.mutations describe one node: it reads them on one replica of every shard
// (the first that answers) and keys each entry by its shard, since every shard
// numbers its blocks itself.
func clusterGenerationSQL(database string, shards []chconn.Shard) string {
	db := strings.ReplaceAll(strings.ReplaceAll(database, `\`, `\\`), `'`, `\'`)
	var parts, mutations []string
	for _, sh := range shards {
		parts = append(parts, fmt.Sprintf(`SELECT concat('%d/', table, '/', partition_id, '/', toString(min(min_block_number))) AS k
           FROM %s WHERE database = '%s' AND table IN ('events_local', 'exposures_local') AND active
           GROUP BY table, partition_id`, sh.Num, sh.Remote("parts"), db))
		mutations = append(mutations, fmt.Sprintf(`SELECT concat('%d/', table, '/', mutation_id) AS k
           FROM %s WHERE database = '%s' AND table IN ('events_local', 'exposures_local') AND is_done = 1`,
			sh.Num, sh.Remote("mutations"), db))
	}
	return `
SELECT cityHash64(
    (SELECT arrayStringConcat(arraySort(groupArray(k)), ',') FROM (` + strings.Join(parts, "\n    UNION ALL ") + `)),
    (SELECT arrayStringConcat(arraySort(groupArray(k)), ',') FROM (` + strings.Join(mutations, "\n    UNION ALL ") + `)))`
}

// The root's aggregates, one array entry per combination (leaves keep theirs in
// packed, see pack.go), and the stamp and version of each leaf it sums, packed
// (packStamps).
const (
	arrayColumns = `multi, variant, day, segment, users, conversions, value_sum, value_sumsq, pre_sum, pre_sumsq, pre_cross, ipw_num, ipw_den`
	leafColumns  = `leaf_stamps`
)

// rootSQL reads a metric's root without its leaves' stamps, which is what reading
// results needs.
const rootSQL = `SELECT version, exposure_rows, event_rows, generation, ` + arrayColumns + ` FROM metric_nodes FINAL
WHERE experiment = ? AND metric = ? AND level = 1 AND node = 0`

// rootVersionsSQL and rootsSQL read the roots of several metrics with their
// leaves' stamps: first which version is the newest, then only that one, where
// FINAL would read every version not merged yet, each with its 65,536 stamps.
const rootVersionsSQL = `SELECT metric, max(version) FROM metric_nodes
WHERE experiment = ? AND metric IN ? AND level = 1 AND node = 0
GROUP BY metric`

const rootsSQL = `SELECT metric, version, exposure_rows, event_rows, generation, ` + arrayColumns + `, ` + leafColumns + `
FROM metric_nodes
PREWHERE experiment = ? AND metric IN ? AND level = 1 AND node = 0 AND version IN ?`

// oldLeavesSQL reads the stored aggregates of some leaves, every version still
// there: a root sums one version of each leaf, which may have been replaced since.
const oldLeavesSQL = `
SELECT metric, node, version, packed
FROM metric_nodes
PREWHERE experiment = ? AND metric IN ? AND level = 0 AND node IN (%s)`

// allLeavesSQL reads every leaf of a metric, to sum its root again.
const allLeavesSQL = `
SELECT node, version, exposure_rows, event_rows, generation, packed
FROM metric_nodes FINAL
PREWHERE experiment = ? AND metric = ? AND level = 0`

const insertSQL = `INSERT INTO metric_nodes (experiment, metric, level, node, version, exposure_rows, event_rows, generation, packed, ` +
	arrayColumns + `, ` + leafColumns + `)`

// preSeconds is CUPED's pre-exposure period in seconds, as the queries take it.
const preSeconds = uint32(experiments.PrePeriod / time.Second)

// firstDaySQL finds the experiment's first day in daily_exposures, which is small.
// A day there is never later than the first exposure still stored: erasure leaves
// the daily aggregates alone, and retention drops a month of them no sooner than the
// same month of exposures (a partition goes when its newest row is old enough).
// (No day, when there are no rows yet, is day 0, whose midnight is before 1970 east
// of UTC: hence the if.)
const firstDaySQL = `SELECT if(min(day) = toDate(0), 0, toUInt32(toDateTime(min(day)))) FROM daily_exposures WHERE experiment = ?`

// cached has ClickHouse keep the blocks a query decompresses in its uncompressed
// cache and use those kept. A refresh reads rows scattered over exposures, events
// and metric_nodes, which decompresses nearly every block of the columns it reads
// (a block holds 64 KiB or more, a leaf's rows a few hundred bytes), and the next
// refresh reads other rows of the same blocks: on the 10,000,000-row benchmark this
// saved a fifth of the leaf query and two fifths of reading old leaves. The server
// keeps up to uncompressed_cache_size bytes (8 GiB in 18.16's default config;
// docker-compose.yml sets it for current releases, whose default is none); without
// the second setting a query reading more than a million rows would not use it.
func cached(ctx context.Context) context.Context {
	return clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{
		"use_uncompressed_cache":           1,
		"merge_tree_max_rows_to_use_cache": 1 << 30,
	}))
}

// leafFilter selects the rows of the given (ascending) leaves, by their buckets,
// which the tables are sorted by, and by leaf: ranges when they are contiguous, as
// when a metric is computed for the first time, and whole buckets without hashing
// every row again when they make whole buckets.
func leafFilter(chunk []uint32) string {
	first, last := chunk[0], chunk[len(chunk)-1]
	leaf := leafOf("user_id")
	if contiguous(chunk) {
		buckets := fmt.Sprintf("bucket BETWEEN %d AND %d", first/leavesPerBucket, last/leavesPerBucket)
		if first%leavesPerBucket == 0 && last%leavesPerBucket == leavesPerBucket-1 {
			return buckets
		}
		return fmt.Sprintf("%s AND %s BETWEEN %d AND %d", buckets, leaf, first, last)
	}
	var bs []uint32
	for _, l := range chunk {
		if b := l / leavesPerBucket; len(bs) == 0 || bs[len(bs)-1] != b {
			bs = append(bs, b)
		}
	}
	return fmt.Sprintf("bucket IN (%s) AND %s IN (%s)", numbers(bs), leaf, numbers(chunk))
}

// contiguous tells whether ascending leaves are a range (or none).
func contiguous(chunk []uint32) bool {
	return len(chunk) == 0 || int(chunk[len(chunk)-1]-chunk[0])+1 == len(chunk)
}

func numbers(ns []uint32) string {
	var b strings.Builder
	for i, n := range ns {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(int(n)))
	}
	return b.String()
}

// store writes, in one insert, the leaves of chunk for every metric of ms (one row
// each, empty for leaves without users, so that they too are known to be computed)
