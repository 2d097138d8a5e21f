package chstore

import (
	"context"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/liftlab/lift/experiments"
)

// The tree of metric_nodes (migration 00041). Users fall into leaf buckets by
// cityHash64(user_id) % 65536, the exposures' and events' materialized column bucket;
// everything about a user's metric depends on their own rows only, so a leaf's
// aggregates change only when rows of its users arrive or are deleted. Node n of
// level k sums nodes 16n … 16n+15 of level k−1; level 4 has one node, the metric.
const (
	leafBuckets = 65536
	fanout      = 16
	topLevel    = 4
	// chunkLeaves bounds how many leaves one query computes, which bounds its memory
	// when a whole experiment is computed for the first time.
	chunkLeaves = 4096
)

// sqlVersion is part of every metric's key in metric_nodes: bump it whenever
// computeSQL changes what it returns, so that old aggregates are computed again.
const sqlVersion = 1

// metric is a MetricQuery as metric_nodes knows it.
type metric struct {
	q     experiments.MetricQuery
	key   string // metric_nodes.metric
	where string // SQL of q.Where
}

func newMetric(q experiments.MetricQuery, by experiments.Breakdown) (metric, error) {
	if q.Kind != "conversion" && q.Kind != "value" {
		return metric{}, fmt.Errorf("chstore: metric %s of %q: unknown kind %q", q.Event, q.Experiment, q.Kind)
	}
	where := whereSQL(q.Where)
	q.Daily = q.Daily || by == experiments.ByDay || by == experiments.BySegmentDay
	key := fmt.Sprintf("v%d/%s/%s/%d", sqlVersion, q.Kind, q.Event, int64(q.Window/time.Second))
	if q.Daily {
		key += "/daily"
	}
	if q.Where != nil {
		// The condition's SQL identifies it (ParseWhere sorts keys); a hash keeps
		// the key short.
		h := fnv.New64a()
		h.Write([]byte(where))
		key += fmt.Sprintf("/%016x", h.Sum64())
	}
	return metric{q: q, key: key, where: where}, nil
}

// computeSQL computes a metric within some leaf buckets in one pass over the
// experiment's exposures and the goal's events of those buckets, grouped by user:
// the first exposure (the smallest (ts, variant, segment, probability), so that ties
// are broken the same way every time), whether the user saw more than one variant
// (min ≠ max), and the user's events kept in arrays, filtered to the attribution
// window after the first exposure and to the pre-exposure period for CUPED's
// covariate (the same metric before exposure); and the inverse-propensity sums Σ y/p
// and Σ 1/p over users, p being the probability logged with their first exposure,
// which bandit reports need. One GROUP BY instead of a join keeps it fast; FINAL
// drops redelivered duplicates of events (duplicate exposures change none of min and
// max). Events older than the pre-period of the experiment's first day cannot count
// and are skipped (eventsFrom). The result is one row per bucket and combination of
// multi-variant flag, variant, day (unless the query is not Daily: then every day is
// 1970-01-01, which keeps the combinations few) and segment of first exposure.
// Notes for ClickHouse 18.16: lambdas there cannot see the row's other columns, so the
// first-exposure time is passed in as an array (replicate); and every alias differs
// from the column names, because 18.16 resolves a reused alias at an outer level to
// the inner expression.
const computeSQL = `
SELECT bkt, is_multi, arm, day1, seg, count() AS n, sum(conv) AS conversions,
       sum(uv) AS v_sum, sum(uv * uv) AS v_sumsq, sum(pre) AS p_sum, sum(pre * pre) AS p_sumsq, sum(pre * y) AS p_cross,
       sum(if(prob > 0, y / prob, 0)) AS i_num, sum(if(prob > 0, 1 / prob, 0)) AS i_den
FROM (
    SELECT toUInt16(cityHash64(uid) % 65536) AS bkt, toUInt8(vmin != vmax) AS is_multi,
           tupleElement(fe, 2) AS arm, {day} AS day1, tupleElement(fe, 3) AS seg, tupleElement(fe, 4) AS prob,
           arrayExists((t, f) -> t >= f AND t < f + ?, ets, replicate(fts, ets)) AS conv,
           arraySum(arrayMap((t, x, f) -> if(t >= f AND t < f + ?, x, 0), ets, evals, replicate(fts, ets))) AS uv,
           {pre} AS pre, {y} AS y
    FROM (
        SELECT user_id AS uid,
               minIf((ts, variant, segment, p_assign), is_exp = 1) AS fe,
               tupleElement(fe, 1) AS fts,
               minIf(variant, is_exp = 1) AS vmin,
               maxIf(variant, is_exp = 1) AS vmax,
               countIf(is_exp = 1) AS nexp,
               groupArrayIf(ts, is_exp = 0) AS ets,
               groupArrayIf(val, is_exp = 0) AS evals
        FROM (
            SELECT user_id, variant, ts, segment, 1 AS is_exp, toFloat64(0) AS val, assignment_probability AS p_assign
            FROM exposures
            WHERE experiment = ? AND {buckets}
            UNION ALL
            SELECT user_id, '' AS variant, ts, '' AS segment, 0 AS is_exp, value AS val, toFloat64(0) AS p_assign
            FROM events FINAL
            WHERE type = ? AND {buckets} AND {where} AND ts >= toDateTime(?)
        )
        GROUP BY uid
        HAVING nexp > 0
    )
)
GROUP BY bkt, is_multi, arm, day1, seg`

// The covariate and the outcome per user, by kind: for conversions whether the user
// converted in the pre-period and in the window, for values the sums of values.
var kindExprs = map[string][2]string{
	"conversion": {"toFloat64(arrayExists((t, f) -> t >= f - ? AND t < f, ets, replicate(fts, ets)))", "toFloat64(conv)"},
	"value":      {"arraySum(arrayMap((t, x, f) -> if(t >= f - ? AND t < f, x, 0), ets, evals, replicate(fts, ets)))", "uv"},
}

// rowsSQL reads how many rows the experiment's exposures and the event type have
// received, in all (groupBy "") or per bucket (groupBy "bucket").
const rowsSQL = `
SELECT %s sumIf(rows, source = 'exposures') AS x_rows, sumIf(rows, source = 'events') AS e_rows
FROM bucket_rows
WHERE (source = 'exposures' AND key = ?) OR (source = 'events' AND key = ?)
%s`

// generationSQL fingerprints what changes data without inserting rows: finished
// mutations (ALTER TABLE … DELETE, as erasure does) and the set of partitions
// (retention drops whole months). A new month also changes it, which costs one full
// computation of every metric a month.
const generationSQL = `
SELECT cityHash64(
    (SELECT arrayStringConcat(arraySort(groupUniqArray(concat(table, '/', partition_id))), ',')
     FROM system.parts WHERE database = currentDatabase() AND table IN ('events', 'exposures') AND active),
    (SELECT arrayStringConcat(arraySort(groupArray(concat(table, '/', mutation_id))), ',')
     FROM system.mutations WHERE database = currentDatabase() AND table IN ('events', 'exposures') AND is_done = 1))`

const nodeColumns = `exposure_rows, event_rows, generation,
    multi, variant, day, segment, users, conversions, value_sum, value_sumsq, pre_sum, pre_sumsq, pre_cross, ipw_num, ipw_den`

const rootSQL = `SELECT ` + nodeColumns + ` FROM metric_nodes FINAL
WHERE experiment = ? AND metric = ? AND level = 4 AND node = 0`

const stampsSQL = `
SELECT level, node, exposure_rows, event_rows, generation
FROM metric_nodes FINAL
WHERE experiment = ? AND metric = ?`

// parentSQL sums the combinations of nodes of one level into their parents, and
// parentStampsSQL their stamps (apart, since ARRAY JOIN drops nodes without users).
// PREWHERE, because 18.16 applies WHERE after ARRAY JOIN, which then expands every
// node of the level; the condition is on the sorting key, so applying it before FINAL
// merges versions drops no version of a selected node.
const parentSQL = `
SELECT intDiv(node, 16) AS parent, m, v, d, s, sum(u) AS n, sum(c) AS conv, sum(vs) AS v_sum, sum(vq) AS v_sumsq,
       sum(ps) AS p_sum, sum(pq) AS p_sumsq, sum(pc) AS p_cross, sum(inum) AS i_num, sum(iden) AS i_den
FROM metric_nodes FINAL
ARRAY JOIN multi AS m, variant AS v, day AS d, segment AS s, users AS u, conversions AS c,
           value_sum AS vs, value_sumsq AS vq, pre_sum AS ps, pre_sumsq AS pq, pre_cross AS pc,
           ipw_num AS inum, ipw_den AS iden
PREWHERE experiment = ? AND metric = ? AND level = ? AND intDiv(node, 16) IN (%s)
GROUP BY parent, m, v, d, s`

const parentStampsSQL = `
SELECT intDiv(node, 16) AS parent, sum(exposure_rows) AS x_rows, sum(event_rows) AS e_rows,
       min(generation) AS gen_min, max(generation) AS gen_max
FROM metric_nodes FINAL
WHERE experiment = ? AND metric = ? AND level = ? AND intDiv(node, 16) IN (%s)
GROUP BY parent`

const insertSQL = `INSERT INTO metric_nodes (experiment, metric, level, node, version, ` + nodeColumns + `)`

// stamp is what a node's aggregates were computed from.
type stamp struct {
	exposureRows, eventRows, generation uint64
}

// empty tells a node whose buckets never received a row: it is not stored, and
// needs no computing. (Migration 00041 fed every row stored before it through the
// counting views, so a bucket without counts has no rows.)
func (st stamp) empty() bool { return st.exposureRows == 0 && st.eventRows == 0 }

// node is one metric_nodes row: its stamp and, per combination, the sums.
type node struct {
	stamp
	multi                                                  []uint8
	variant, segment                                       []string
	day                                                    []time.Time
	users, conversions                                     []uint64
	sum, sumSq, preSum, preSumSq, preCross, ipwNum, ipwDen []float64
}

func (n *node) add(multi uint8, variant string, day time.Time, segment string, users, conversions uint64,
	sum, sumSq, preSum, preSumSq, preCross, ipwNum, ipwDen float64) {
	n.multi = append(n.multi, multi)
	n.variant = append(n.variant, variant)
	n.day = append(n.day, day)
	n.segment = append(n.segment, segment)
	n.users = append(n.users, users)
	n.conversions = append(n.conversions, conversions)
	n.sum = append(n.sum, sum)
	n.sumSq = append(n.sumSq, sumSq)
	n.preSum = append(n.preSum, preSum)
	n.preSumSq = append(n.preSumSq, preSumSq)
	n.preCross = append(n.preCross, preCross)
	n.ipwNum = append(n.ipwNum, ipwNum)
	n.ipwDen = append(n.ipwDen, ipwDen)
}

func (n *node) scanTargets() []any {
	return []any{&n.exposureRows, &n.eventRows, &n.generation, &n.multi, &n.variant, &n.day, &n.segment,
		&n.users, &n.conversions, &n.sum, &n.sumSq, &n.preSum, &n.preSumSq, &n.preCross, &n.ipwNum, &n.ipwDen}
}

// lock serialises refreshes of one metric within this process: the second caller
// then finds the nodes the first computed and only computes what arrived since.
func (s *Store) lock(m metric) func() {
	mu, _ := s.locks.LoadOrStore(m.q.Experiment+"\x00"+m.key, new(sync.Mutex))
	mu.(*sync.Mutex).Lock()
	return mu.(*sync.Mutex).Unlock
}

// total returns the metric's root node, computing first every node whose rows
// changed since it was stored.
//
// Counts are read before the data they stamp, and a materialized view writes its
// rows only after the rows it saw are in their table, so a node covers at least the
// rows its stamp counts. A node is current when its stamp equals the counts summed
// over its leaves now: counts only grow and a stored stamp is a past reading of
// them, so equal sums mean every leaf below is current. Two processes refreshing at
// once both store correct nodes, and the later reading of the counts wins.
func (s *Store) total(ctx context.Context, m metric) (*node, error) {
	defer s.lock(m)()
	version := uint64(s.now().UnixNano())
	var gen uint64
	if err := s.conn.QueryRow(ctx, generationSQL).Scan(&gen); err != nil {
		return nil, err
	}
	var all stamp
	if err := s.conn.QueryRow(ctx, fmt.Sprintf(rowsSQL, "", ""), m.q.Experiment, m.q.Event).Scan(&all.exposureRows, &all.eventRows); err != nil {
		return nil, err
	}
	all.generation = gen
	if all.empty() {
		return nil, nil // no rows at all
	}
	root, err := s.root(ctx, m)
	if err != nil || root != nil && root.stamp == all {
		return root, err
	}
	if err := s.refresh(ctx, m, gen, version); err != nil {
		return nil, err
	}
	return s.root(ctx, m)
}

func (s *Store) root(ctx context.Context, m metric) (*node, error) {
	rows, err := s.conn.Query(ctx, rootSQL, m.q.Experiment, m.key)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	if !rows.Next() {
		return nil, rows.Err()
	}
	n := &node{}
	if err := rows.Scan(n.scanTargets()...); err != nil {
		return nil, err
	}
	return n, rows.Err()
}

// refresh computes the leaves whose counts moved, then level by level the nodes
// above them and any node whose stamp disagrees with the counts.
func (s *Store) refresh(ctx context.Context, m metric, gen, version uint64) error {
	want := make([]stamp, leafBuckets)
	rows, err := s.conn.Query(ctx, fmt.Sprintf(rowsSQL, "bucket,", "GROUP BY bucket"), m.q.Experiment, m.q.Event)
	if err != nil {
		return err
	}
	for rows.Next() {
		var b uint16
		var x, e uint64
		if err := rows.Scan(&b, &x, &e); err != nil {
			rows.Close()
			return err
		}
		want[b].exposureRows, want[b].eventRows = x, e
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for b := range want {
		want[b].generation = gen
	}
	have := make([]map[uint16]stamp, topLevel+1)
	for l := range have {
		have[l] = map[uint16]stamp{}
	}
	rows, err = s.conn.Query(ctx, stampsSQL, m.q.Experiment, m.key)
	if err != nil {
		return err
	}
	for rows.Next() {
		var level uint8
		var n uint16
		var st stamp
		if err := rows.Scan(&level, &n, &st.exposureRows, &st.eventRows, &st.generation); err != nil {
			rows.Close()
			return err
		}
		if int(level) <= topLevel {
			have[level][n] = st
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}

	var stale []uint16
	changed := map[uint16]bool{}
	for b := range want {
		if st, ok := have[0][uint16(b)]; ok && st != want[b] || !ok && !want[b].empty() {
			stale = append(stale, uint16(b))
			changed[uint16(b)] = true
		}
	}
	var from uint32
	if len(stale) > 0 {
		if from, err = s.eventsFrom(ctx, m.q.Experiment); err != nil {
			return err
		}
	}
	for len(stale) > 0 {
		chunk := stale[:min(len(stale), chunkLeaves)]
		stale = stale[len(chunk):]
		leaves, err := s.computeLeaves(ctx, m, chunk, want, from)
		if err != nil {
			return err
		}
		if err := s.store(ctx, m, 0, chunk, leaves, version); err != nil {
			return err
		}
	}
	// Above the leaves, want is the sum of the level below.
	for level := 1; level <= topLevel; level++ {
		up := make([]stamp, len(want)/fanout)
		for i, st := range want {
			p := &up[i/fanout]
			p.exposureRows += st.exposureRows
			p.eventRows += st.eventRows
			p.generation = gen
		}
		want = up
		var dirty []uint16
		next := map[uint16]bool{}
		for n := range want {
			st, ok := have[level][uint16(n)]
			if ok && (st != want[n] || anyChanged(changed, n)) || !ok && !want[n].empty() {
				dirty = append(dirty, uint16(n))
				next[uint16(n)] = true
			}
		}
		changed = next
		for len(dirty) > 0 {
			chunk := dirty[:min(len(dirty), chunkLeaves)]
			dirty = dirty[len(chunk):]
			parents, err := s.computeParents(ctx, m, level, chunk, gen)
			if err != nil {
				return err
			}
			if err := s.store(ctx, m, level, chunk, parents, version); err != nil {
				return err
			}
		}
	}
	return nil
}

// anyChanged tells whether a child of node n was computed again.
func anyChanged(changed map[uint16]bool, n int) bool {
	for c := n * fanout; c < (n+1)*fanout; c++ {
		if changed[uint16(c)] {
			return true
		}
	}
	return false
}

// preSeconds is CUPED's pre-exposure period in seconds, as the queries take it.
const preSeconds = uint32(experiments.PrePeriod / time.Second)

// firstDaySQL finds the experiment's first day in daily_exposures, which is small.
// A day there is never later than the first exposure still stored: erasure leaves
// the daily aggregates alone, and retention drops a month of them no sooner than the
// same month of exposures (a partition goes when its newest row is old enough).
// (No day, when there are no rows yet, is day 0, whose midnight is before 1970 east
// of UTC: hence the if.)
const firstDaySQL = `SELECT if(min(day) = toDate(0), 0, toUInt32(toDateTime(min(day)))) FROM daily_exposures WHERE experiment = ?`

// eventsFrom returns the earliest time (Unix seconds) an event can count for
// experiment: the pre-period before its first day. Filtering events by it in
// computeSQL, rather than by a subquery on exposures, matters on 18.16, which
// evaluates such a subquery anew at every stage of the query's analysis.
func (s *Store) eventsFrom(ctx context.Context, experiment string) (uint32, error) {
	var first uint32
	if err := s.conn.QueryRow(ctx, firstDaySQL, experiment).Scan(&first); err != nil {
		return 0, err
	}
	if first < preSeconds {
		return 0, nil
	}
	return first - preSeconds, nil
}

// computeLeaves runs computeSQL over the given leaves, counting events from from
// (Unix seconds); their stamps are the counts read before.
func (s *Store) computeLeaves(ctx context.Context, m metric, chunk []uint16, want []stamp, from uint32) (map[uint16]*node, error) {
	exprs := kindExprs[m.q.Kind]
	day := "toDate(0)"
	if m.q.Daily {
		day = "toDate(fts)"
	}
	sql := strings.NewReplacer("{pre}", exprs[0], "{y}", exprs[1], "{day}", day, "{where}", m.where,
		"{buckets}", bucketFilter(chunk)).Replace(computeSQL)
	window := uint32(m.q.Window / time.Second)
	rows, err := s.conn.Query(ctx, sql, window, window, preSeconds, m.q.Experiment, m.q.Event, from)
	if err != nil {
		return nil, err
	}
	out := make(map[uint16]*node, len(chunk))
	for _, b := range chunk {
		out[b] = &node{stamp: want[b]}
	}
	return out, readCombinations(rows, out)
}

// readCombinations adds rows of (node, multi, variant, day, segment, users,
// conversions and the seven sums) to the nodes they name, and closes rows.
func readCombinations(rows driver.Rows, nodes map[uint16]*node) error {
	defer rows.Close()
	for rows.Next() {
		var id uint16
		var multi uint8
		var variant, segment string
		var day time.Time
		var users, conversions uint64
		var sum, sumSq, preSum, preSumSq, preCross, ipwNum, ipwDen float64
		if err := rows.Scan(&id, &multi, &variant, &day, &segment, &users, &conversions,
			&sum, &sumSq, &preSum, &preSumSq, &preCross, &ipwNum, &ipwDen); err != nil {
			return err
		}
		if n := nodes[id]; n != nil {
			n.add(multi, variant, day, segment, users, conversions, sum, sumSq, preSum, preSumSq, preCross, ipwNum, ipwDen)
		}
	}
	return rows.Err()
}

// bucketFilter selects the rows of the given (ascending) leaves: a range when they
// are contiguous, as when a metric is computed for the first time.
func bucketFilter(chunk []uint16) string {
	first, last := chunk[0], chunk[len(chunk)-1]
	if int(last)-int(first)+1 == len(chunk) {
		return fmt.Sprintf("bucket BETWEEN %d AND %d", first, last)
	}
	return "bucket IN (" + numbers(chunk) + ")"
}

func numbers(ns []uint16) string {
	var b strings.Builder
	for i, n := range ns {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(int(n)))
	}
	return b.String()
}

// computeParents sums the children (level − 1) of the given nodes of level.
func (s *Store) computeParents(ctx context.Context, m metric, level int, chunk []uint16, gen uint64) (map[uint16]*node, error) {
	list := numbers(chunk)
	out := make(map[uint16]*node, len(chunk))
	for _, n := range chunk {
		out[n] = &node{}
	}
	rows, err := s.conn.Query(ctx, fmt.Sprintf(parentStampsSQL, list), m.q.Experiment, m.key, uint8(level-1))
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var p uint16
		var st stamp
		var genMax uint64
		if err := rows.Scan(&p, &st.exposureRows, &st.eventRows, &st.generation, &genMax); err != nil {
			rows.Close()
			return nil, err
		}
		if st.generation != genMax || st.generation != gen {
			st.generation = 0 // children of different generations: not current
		}
		if n := out[p]; n != nil {
			n.stamp = st
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows, err = s.conn.Query(ctx, fmt.Sprintf(parentSQL, list), m.q.Experiment, m.key, uint8(level-1))
	if err != nil {
		return nil, err
	}
	return out, readCombinations(rows, out)
}

// store writes one row per node of chunk, empty for nodes without users, so that
// they too are known to be computed.
func (s *Store) store(ctx context.Context, m metric, level int, chunk []uint16, nodes map[uint16]*node, version uint64) error {
	batch, err := s.conn.PrepareBatch(ctx, insertSQL)
	if err != nil {
		return err
	}
	defer batch.Abort()
	for _, id := range chunk {
		n := nodes[id]
		if err := batch.Append(m.q.Experiment, m.key, uint8(level), id, version,
			n.exposureRows, n.eventRows, n.generation,
			nonNil(n.multi), nonNil(n.variant), nonNil(n.day), nonNil(n.segment), nonNil(n.users), nonNil(n.conversions),
			nonNil(n.sum), nonNil(n.sumSq), nonNil(n.preSum), nonNil(n.preSumSq), nonNil(n.preCross),
			nonNil(n.ipwNum), nonNil(n.ipwDen)); err != nil {
			return err
		}
	}
	return batch.Send()
}

// nonNil gives the driver an empty array rather than a nil slice.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
