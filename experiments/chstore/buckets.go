package chstore

import (
	"cmp"
	"context"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"golang.org/x/sync/errgroup"

	"github.com/liftlab/lift/experiments"
)

// metric_nodes (migrations 00041 to 00043) holds each metric per leaf and its
// root, the sum over every leaf. Users fall into 65,536 buckets by
// cityHash64(user_id) % 65536, the exposures' and events' materialized column bucket
// by which they are sorted, and each bucket into four leaves (leafOf); everything
// about a user's metric depends on their own rows only, so a leaf's aggregates change
// only when rows of its users arrive or are deleted.
//
// A refresh computes the leaves whose row counts moved and updates the root by the
// difference between their new and their stored aggregates: the root is never read
// back from the 262,144 leaves unless something is out of order (see refresh).
const (
	buckets         = 65536
	leavesPerBucket = 4
	leafCount       = buckets * leavesPerBucket
	leafLevel       = 0
	rootLevel       = 1
	// chunkLeaves bounds how many leaves one query computes, which bounds its memory
	// when a whole experiment is computed for the first time (Store.chunk), and
	// scatteredLeaves how many it lists when they are not a range: the lists must
	// stay within what ClickHouse parses by default (256 KiB, 50,000 elements).
	chunkLeaves     = 16384
	scatteredLeaves = 4096
	// maxTogether is how many metrics one pass computes: their event conditions are
	// bits of a UInt64.
	maxTogether = 64
)

// leafOf is the SQL of the leaf of the user in column col: the four leaves of bucket
// b are 4b … 4b + 3, so that a query reads them by the sort key (migration 00043).
func leafOf(col string) string {
	return fmt.Sprintf("toUInt32(cityHash64(%[1]s) %% 65536 * 4 + intDiv(cityHash64(%[1]s), 65536) %% 4)", col)
}

// sqlVersion is part of every metric's key in metric_nodes: bump it whenever
// leafSQL changes what it returns, so that old aggregates are computed again.
const sqlVersion = 2

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
// Notes for ClickHouse 18.16: lambdas there cannot see the row's other columns, so
// the first-exposure time is passed in as an array (replicate); and every alias
// differs from the column names, because 18.16 resolves a reused alias at an outer
// level to the inner expression.
const leafSQL = `
SELECT lf, is_multi, arm, day1, seg, count() AS n, sum(if(prob > 0, 1 / prob, 0)) AS i_den{sums}
FROM (
    SELECT {leaf} AS lf, toUInt8(vmin != vmax) AS is_multi,
           tupleElement(fe, 2) AS arm, {day} AS day1, tupleElement(fe, 3) AS seg, tupleElement(fe, 4) AS prob,
           replicate(fts, ets) AS efts{outcomes}
    FROM (
        SELECT user_id AS uid,
               minIf((ts, variant, segment, p_assign), is_exp = 1) AS fe,
               tupleElement(fe, 1) AS fts,
               minIf(variant, is_exp = 1) AS vmin,
               maxIf(variant, is_exp = 1) AS vmax,
               countIf(is_exp = 1) AS nexp,
               groupArrayIf(ts, is_exp = 0) AS ets,
               groupArrayIf(val, is_exp = 0) AS evals,
               groupArrayIf(bits, is_exp = 0) AS ebits
        FROM (
            SELECT user_id, variant, ts, segment, 1 AS is_exp, toFloat64(0) AS val, materialize(toUInt64(0)) AS bits, assignment_probability AS p_assign
            FROM exposures
            WHERE experiment = ? AND {leaves}
            UNION ALL
            SELECT user_id, '' AS variant, ts, '' AS segment, 0 AS is_exp, value AS val, materialize(toUInt64({bits})) AS bits, toFloat64(0) AS p_assign
            FROM events FINAL
            WHERE type = ? AND {leaves} AND ts >= toDateTime(?) AND ({any})
        )
        GROUP BY uid
        HAVING nexp > 0
    )
)
GROUP BY lf, is_multi, arm, day1, seg`

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
		"{leaves}", leafFilter(chunk), "{leaf}", leafOf("uid")).Replace(leafSQL)
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
// mutations (ALTER TABLE … DELETE, as erasure does) and the set of partitions
// (retention drops whole months). A new month also changes it, which costs one full
// computation of every metric a month.
const generationSQL = `
SELECT cityHash64(
    (SELECT arrayStringConcat(arraySort(groupUniqArray(concat(table, '/', partition_id))), ',')
     FROM system.parts WHERE database = currentDatabase() AND table IN ('events', 'exposures') AND active),
    (SELECT arrayStringConcat(arraySort(groupArray(concat(table, '/', mutation_id))), ',')
     FROM system.mutations WHERE database = currentDatabase() AND table IN ('events', 'exposures') AND is_done = 1))`

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

// stamp is what a node's aggregates were computed from.
type stamp struct {
	exposureRows, eventRows, generation uint64
}

// empty tells a node whose buckets never received a row: it is not stored, and
// needs no computing. (Migration 00041 fed every row stored before it through the
// counting views, so a bucket without counts has no rows.)
func (st stamp) empty() bool { return st.exposureRows == 0 && st.eventRows == 0 }

// combination is what the aggregates of a node are split by.
type combination struct {
	multi            uint8
	variant, segment string
	day              int64 // Unix seconds of the day's midnight, UTC
}

// entry is the aggregates of one combination.
type entry struct {
	combination
	users, conversions                                     uint64
	sum, sumSq, preSum, preSumSq, preCross, ipwNum, ipwDen float64
}

// node is one metric_nodes row: its stamp, which computation wrote it, the
// aggregates per combination and, for a root, what it sums.
type node struct {
	stamp
	version uint64
	entries []entry
	leaves  []leaf // a root's, per bucket
}

// leaf is what a root knows of one of its leaves: the counts it was computed from
// and the version of the computation that stored it (0: no leaf). The leaves'
// generation is the root's.
type leaf struct {
	exposureRows, eventRows, version uint64
}

// addScaled adds sign × e's aggregates to a (sign 1 or −1). The counts wrap
// around in uint64 while differences are added, and come out right once all are,
// since a true count is never negative.
func (a *entry) addScaled(e entry, sign int64) {
	f := float64(sign)
	a.users += uint64(sign) * e.users
	a.conversions += uint64(sign) * e.conversions
	a.sum += f * e.sum
	a.sumSq += f * e.sumSq
	a.preSum += f * e.preSum
	a.preSumSq += f * e.preSumSq
	a.preCross += f * e.preCross
	a.ipwNum += f * e.ipwNum
	a.ipwDen += f * e.ipwDen
}

// add adds e to the entry of its combination.
func (n *node) add(e entry) {
	for i := range n.entries {
		if n.entries[i].combination == e.combination {
			n.entries[i].addScaled(e, 1)
			return
		}
	}
	n.entries = append(n.entries, e)
}

// columns holds the root's aggregates as metric_nodes stores them.
type columns struct {
	multi                                                  []uint8
	variant, segment                                       []string
	day                                                    []time.Time
	users, conversions                                     []uint64
	sum, sumSq, preSum, preSumSq, preCross, ipwNum, ipwDen []float64
}

func (c *columns) targets() []any {
	return []any{&c.multi, &c.variant, &c.day, &c.segment, &c.users, &c.conversions,
		&c.sum, &c.sumSq, &c.preSum, &c.preSumSq, &c.preCross, &c.ipwNum, &c.ipwDen}
}

func (c *columns) entries() []entry {
	out := make([]entry, len(c.users))
	for i := range out {
		out[i] = entry{combination{c.multi[i], c.variant[i], c.segment[i], c.day[i].Unix()}, c.users[i], c.conversions[i],
			c.sum[i], c.sumSq[i], c.preSum[i], c.preSumSq[i], c.preCross[i], c.ipwNum[i], c.ipwDen[i]}
	}
	return out
}

// values is the arguments of one insertSQL row: a leaf's aggregates packed, the
// root's in arrays with its leaves' stamps.
func (n *node) values(experiment, metric string, level uint8, id uint32, version uint64) []any {
	c := columns{multi: []uint8{}, variant: []string{}, segment: []string{}, day: []time.Time{}, users: []uint64{},
		conversions: []uint64{}, sum: []float64{}, sumSq: []float64{}, preSum: []float64{}, preSumSq: []float64{},
		preCross: []float64{}, ipwNum: []float64{}, ipwDen: []float64{}}
	packed := ""
	stamps := ""
	if level == leafLevel {
		packed = pack(n.entries)
	} else {
		for _, e := range n.entries {
			c.multi = append(c.multi, e.multi)
			c.variant = append(c.variant, e.variant)
			c.segment = append(c.segment, e.segment)
			c.day = append(c.day, time.Unix(e.day, 0).UTC())
			c.users = append(c.users, e.users)
			c.conversions = append(c.conversions, e.conversions)
			c.sum = append(c.sum, e.sum)
			c.sumSq = append(c.sumSq, e.sumSq)
			c.preSum = append(c.preSum, e.preSum)
			c.preSumSq = append(c.preSumSq, e.preSumSq)
			c.preCross = append(c.preCross, e.preCross)
			c.ipwNum = append(c.ipwNum, e.ipwNum)
			c.ipwDen = append(c.ipwDen, e.ipwDen)
		}
		stamps = packStamps(n.leaves)
	}
	return []any{experiment, metric, level, id, version, n.exposureRows, n.eventRows, n.generation, packed,
		c.multi, c.variant, c.day, c.segment, c.users, c.conversions, c.sum, c.sumSq, c.preSum, c.preSumSq,
		c.preCross, c.ipwNum, c.ipwDen, stamps}
}

// lock serialises refreshes of one metric within this process: the second caller
// then finds the nodes the first computed and only computes what arrived since.
func (s *Store) lock(m metric) func() {
	mu, _ := s.locks.LoadOrStore(m.rootKey(), new(sync.Mutex))
	mu.(*sync.Mutex).Lock()
	return mu.(*sync.Mutex).Unlock
}

// refreshAll brings metrics up to date, those of one experiment and event type
// together, and returns their roots by rootKey.
func (s *Store) refreshAll(ctx context.Context, ms []metric) (map[string]*node, error) {
	groups := map[[2]string][]metric{}
	for _, m := range ms {
		k := [2]string{m.q.Experiment, m.q.Event}
		if !slices.ContainsFunc(groups[k], func(o metric) bool { return o.key == m.key }) {
			groups[k] = append(groups[k], m)
		}
	}
	keys := make([][2]string, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b [2]string) int { return cmp.Or(cmp.Compare(a[0], b[0]), cmp.Compare(a[1], b[1])) })
	out := map[string]*node{}
	for _, k := range keys {
		// Locks are taken in key order, so that two refreshes never wait for each other.
		ms := groups[k]
		slices.SortFunc(ms, func(a, b metric) int { return cmp.Compare(a.key, b.key) })
		for len(ms) > 0 {
			n := min(len(ms), maxTogether)
			roots, err := s.refreshLocked(ctx, ms[:n])
			if err != nil {
				return nil, fmt.Errorf("chstore: metrics of %s on %s: %w", k[0], k[1], err)
			}
			for i, m := range ms[:n] {
				out[m.rootKey()] = roots[i]
			}
			ms = ms[n:]
		}
	}
	return out, nil
}

// rootKey identifies a metric's root among those of every experiment.
func (m metric) rootKey() string { return m.q.Experiment + "\x00" + m.key }

func (s *Store) refreshLocked(ctx context.Context, ms []metric) ([]*node, error) {
	for _, m := range ms {
		defer s.lock(m)()
	}
	version := uint64(s.now().UnixNano())
	gen, err := s.generation(ctx)
	if err != nil {
		return nil, err
	}
	return s.refresh(ctx, ms, gen, version)
}

func (s *Store) generation(ctx context.Context) (uint64, error) {
	var gen uint64
	err := s.conn.QueryRow(ctx, generationSQL).Scan(&gen)
	return gen, err
}

// total returns the metric's root node, computing first every leaf whose rows
// changed since it was stored.
//
// Counts are read before the data they stamp, and a materialized view writes its
// rows only after the rows it saw are in their table, so a node covers at least the
// rows its stamp counts. The root is current when its stamp equals the counts now:
// counts only grow, and the root's stamp is the sum of its leaves' stamps, each a
// past reading of its bucket's counts.
func (s *Store) total(ctx context.Context, m metric) (*node, error) {
	defer s.lock(m)()
	version := uint64(s.now().UnixNano())
	gen, err := s.generation(ctx)
	if err != nil {
		return nil, err
	}
	var all stamp
	if err := s.conn.QueryRow(ctx, rowsSQL, m.q.Experiment, m.q.Event).Scan(&all.exposureRows, &all.eventRows); err != nil {
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
	roots, err := s.refresh(ctx, []metric{m}, gen, version)
	if err != nil {
		return nil, err
	}
	return roots[0], nil
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
	var c columns
	if err := rows.Scan(append([]any{&n.version, &n.exposureRows, &n.eventRows, &n.generation}, c.targets()...)...); err != nil {
		return nil, err
	}
	n.entries = c.entries()
	return n, rows.Err()
}

// refresh brings metrics ms (of one experiment and event type) up to date and
// returns their roots: it
// computes, in one pass for all of them, every leaf whose counts differ from those
// its metric's root records, and updates each root by the difference between the
// new aggregates of those leaves and the versions the root sums, storing the last
// leaves and the roots in one insert, which ClickHouse makes visible at once.
//
// A root records which version of each leaf it sums, so it is always the sum of
// those versions, whatever else was stored since (another process refreshing at
// the same time, a refresh stopped between inserts): the difference is exact. A
// metric without a root starts from the empty sum, which sums no leaf. When a
// version a root sums is gone (a background merge replaced it by a newer one), the
// root is summed again from every leaf instead.
func (s *Store) refresh(ctx context.Context, ms []metric, gen, version uint64) ([]*node, error) {
	experiment, event := ms[0].q.Experiment, ms[0].q.Event
	// The counts and the roots, read at once.
	var want []stamp
	var roots []*node
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) {
		want, err = s.counts(gctx, experiment, event, gen)
		return err
	})
	g.Go(func() (err error) {
		roots, err = s.roots(gctx, ms)
		return err
	})
	if err := g.Wait(); err != nil {
		return nil, err
	}

	// The metrics to bring up to date, and the leaves any of them lacks.
	var todo []metric
	var updated []*node // per metric of todo: its root, or nil to sum it again
	var todoIndex []int // per metric of todo: its index in ms
	isStale := make([]bool, leafCount)
	for i, m := range ms {
		r := roots[i]
		if r == nil {
			r = &node{leaves: make([]leaf, leafCount)} // the sum of no leaves
		}
		current := true
		for l, st := range r.leaves {
			if st.version != 0 && (r.generation != gen || st.exposureRows != want[l].exposureRows || st.eventRows != want[l].eventRows) ||
				st.version == 0 && !want[l].empty() {
				isStale[l], current = true, false
			}
		}
		if current {
			continue
		}
		todo = append(todo, m)
		updated = append(updated, r)
		todoIndex = append(todoIndex, i)
	}
	if len(todo) == 0 {
		return roots, nil
	}
	var stale []uint32
	for l, yes := range isStale {
		if yes {
			stale = append(stale, uint32(l))
		}
	}
	var from uint32
	if len(stale) > 0 {
		var err error
		if from, err = s.eventsFrom(ctx, experiment); err != nil {
			return nil, err
		}
	}
	deltas := make([]delta, len(todo))
	for i := range deltas {
		deltas[i] = delta{}
	}
	for {
		chunk := stale[:min(len(stale), s.chunk)]
		if !contiguous(chunk) {
			chunk = chunk[:min(len(chunk), scatteredLeaves)]
		}
		stale = stale[len(chunk):]
		last := len(stale) == 0
		// The versions the roots sum are read while the leaves are computed.
		var computed, old []map[uint32]*node
		g, gctx := errgroup.WithContext(ctx)
		g.Go(func() (err error) {
			computed, err = s.computeLeaves(gctx, todo, chunk, want, from)
			return err
		})
		g.Go(func() (err error) {
			old, err = s.oldLeaves(gctx, todo, chunk, updated)
			return err
		})
		if err := g.Wait(); err != nil {
			return nil, err
		}
		for i, r := range updated {
			if r == nil {
				continue
			}
			if !deltas[i].addChunk(chunk, r.leaves, old[i], computed[i], version) {
				updated[i] = nil // a version it sums is gone
			}
		}
		if last {
			for i, r := range updated {
				if r != nil {
					r.stamp, r.version = r.sumStamps(gen), version
					r.entries = deltas[i].apply(r.entries)
				}
			}
		}
		write := updated
		if !last {
			write = nil
		}
		if err := s.store(ctx, todo, chunk, computed, write, version); err != nil {
			return nil, err
		}
		if last {
			break
		}
	}
	for i, m := range todo {
		r := updated[i]
		if r == nil { // a version it sums is gone
			var err error
			if r, err = s.sumRoot(ctx, m, version); err != nil {
				return nil, err
			}
		}
		roots[todoIndex[i]] = r
	}
	return roots, nil
}

// counts reads the rows each leaf has received, the stamp (in generation gen) its
// computation gets.
func (s *Store) counts(ctx context.Context, experiment, event string, gen uint64) ([]stamp, error) {
	want := make([]stamp, leafCount)
	for l := range want {
		want[l].generation = gen
	}
	rows, err := s.conn.Query(ctx, leafRowsSQL, experiment, event)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var b uint16
	var x, e [leavesPerBucket]uint64
	for rows.Next() {
		if err := rows.Scan(&b, &x[0], &x[1], &x[2], &x[3], &e[0], &e[1], &e[2], &e[3]); err != nil {
			return nil, err
		}
		for k := range leavesPerBucket {
			l := int(b)*leavesPerBucket + k
			want[l].exposureRows, want[l].eventRows = x[k], e[k]
		}
	}
	return want, rows.Err()
}

// sumStamps is the stamp of root n in generation gen: the sum of its leaves'.
func (n *node) sumStamps(gen uint64) stamp {
	st := stamp{generation: gen}
	for _, l := range n.leaves {
		st.exposureRows += l.exposureRows
		st.eventRows += l.eventRows
	}
	return st
}

// roots reads the roots of ms with their leaves' stamps, nil where there is none.
func (s *Store) roots(ctx context.Context, ms []metric) ([]*node, error) {
	index := map[string]int{}
	var keys clickhouse.GroupSet // metric IN (…)
	for i, m := range ms {
		index[m.key] = i
		keys.Value = append(keys.Value, m.key)
	}
	out := make([]*node, len(ms))
	newest := map[string]uint64{}
	var versions clickhouse.GroupSet // version IN (…)
	rows, err := s.conn.Query(ctx, rootVersionsSQL, ms[0].q.Experiment, keys)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var key string
		var v uint64
		if err := rows.Scan(&key, &v); err != nil {
			rows.Close()
			return nil, err
		}
		newest[key] = v
		versions.Value = append(versions.Value, v)
	}
	rows.Close()
	if err := rows.Err(); err != nil || len(versions.Value) == 0 {
		return out, err
	}
	rows, err = s.conn.Query(ctx, rootsSQL, ms[0].q.Experiment, keys, versions)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var key string
		n := &node{}
		var c columns
		var stamps string
		if err := rows.Scan(append(append([]any{&key, &n.version, &n.exposureRows, &n.eventRows, &n.generation}, c.targets()...),
			&stamps)...); err != nil {
			return nil, err
		}
		if n.version != newest[key] {
			continue // an older root of this metric with another's newest version
		}
		if n.leaves, err = unpackStamps(stamps); err != nil {
			continue // unreadable: start again from the empty sum
		}
		n.entries = c.entries()
		out[index[key]] = n
	}
	return out, rows.Err()
}

// oldLeaves reads the stored versions of the leaves of chunk, per metric of ms
// whose root is being updated (roots[i] not nil), keeping those the root sums.
func (s *Store) oldLeaves(ctx context.Context, ms []metric, chunk []uint32, roots []*node) ([]map[uint32]*node, error) {
	index := map[string]int{}
	var keys clickhouse.GroupSet // metric IN (…)
	old := make([]map[uint32]*node, len(ms))
	for i, m := range ms {
		old[i] = map[uint32]*node{}
		if roots[i] != nil && slices.ContainsFunc(chunk, func(l uint32) bool { return roots[i].leaves[l].version != 0 }) {
			index[m.key] = i
			keys.Value = append(keys.Value, m.key)
		}
	}
	if len(keys.Value) == 0 {
		return old, nil
	}
	rows, err := s.conn.Query(cached(ctx), fmt.Sprintf(oldLeavesSQL, numbers(chunk)), ms[0].q.Experiment, keys)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var key, packed string
		var id uint32
		var version uint64
		if err := rows.Scan(&key, &id, &version, &packed); err != nil {
			return nil, err
		}
		i := index[key]
		if version != roots[i].leaves[id].version {
			continue
		}
		entries, err := unpack(packed)
		if err != nil {
			return nil, err
		}
		old[i][id] = &node{version: version, entries: entries}
	}
	return old, rows.Err()
}

// delta is a signed sum of aggregates per combination (see addScaled).
type delta map[combination]*entry

// addChunk adds the difference between the leaves of chunk computed now and the
// old versions a root sums, and records the new ones in the root's leaves; it
// reports false if an old version is missing.
func (d delta) addChunk(chunk []uint32, leaves []leaf, old, computed map[uint32]*node, version uint64) bool {
	for _, b := range chunk {
		if leaves[b].version != 0 {
			o := old[b]
			if o == nil {
				return false
			}
			d.add(o, -1)
		}
		n := computed[b]
		d.add(n, 1)
		leaves[b] = leaf{n.exposureRows, n.eventRows, version}
	}
	return true
}

func (d delta) add(n *node, sign int64) {
	for _, e := range n.entries {
		a := d[e.combination]
		if a == nil {
			a = &entry{combination: e.combination}
			d[e.combination] = a
		}
		a.addScaled(e, sign)
	}
}

// apply returns entries changed by d, in a stable order. A combination left
// without users is dropped (all its sums are sums over no users).
func (d delta) apply(entries []entry) []entry {
	for i := range entries {
		if a := d[entries[i].combination]; a != nil {
			entries[i].addScaled(*a, 1)
			delete(d, entries[i].combination)
		}
	}
	for _, a := range d {
		entries = append(entries, *a)
	}
	entries = slices.DeleteFunc(entries, func(e entry) bool { return e.users == 0 })
	slices.SortFunc(entries, func(a, b entry) int {
		return cmp.Or(cmp.Compare(a.multi, b.multi), cmp.Compare(a.variant, b.variant), cmp.Compare(a.day, b.day),
			cmp.Compare(a.segment, b.segment))
	})
	return entries
}

// sumRoot sums the root of m again from all its stored leaves.
func (s *Store) sumRoot(ctx context.Context, m metric, version uint64) (*node, error) {
	rows, err := s.conn.Query(ctx, allLeavesSQL, m.q.Experiment, m.key)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	root := &node{leaves: make([]leaf, leafCount), version: version}
	d := delta{}
	genMin, genMax := ^uint64(0), uint64(0)
	for rows.Next() {
		var id uint32
		var l node
		var packed string
		if err := rows.Scan(&id, &l.version, &l.exposureRows, &l.eventRows, &l.generation, &packed); err != nil {
			return nil, err
		}
		if l.entries, err = unpack(packed); err != nil {
			return nil, err
		}
		if id >= leafCount {
			return nil, fmt.Errorf("leaf %d out of range", id)
		}
		root.leaves[id] = leaf{l.exposureRows, l.eventRows, l.version}
		genMin, genMax = min(genMin, l.generation), max(genMax, l.generation)
		d.add(&l, 1)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	root.stamp = root.sumStamps(0) // generation 0: not current
	if genMin == genMax {
		root.generation = genMin // unless all leaves are of one generation
	}
	root.entries = d.apply(nil)
	return root, s.store(ctx, []metric{m}, nil, nil, []*node{root}, version)
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
// leafSQL, rather than by a subquery on exposures, matters on 18.16, which
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

// computeLeaves runs leafSQL over the given leaves for every metric of ms, counting
// events from from (Unix seconds): per metric, the leaves by id, whose stamps are
// the counts read before. A metric that is not Daily has its days merged.
func (s *Store) computeLeaves(ctx context.Context, ms []metric, chunk []uint32, want []stamp, from uint32) ([]map[uint32]*node, error) {
	out := make([]map[uint32]*node, len(ms))
	for i := range ms {
		out[i] = make(map[uint32]*node, len(chunk))
		for _, b := range chunk {
			out[i][b] = &node{stamp: want[b]}
		}
	}
	if len(chunk) == 0 {
		return out, nil
	}
	rows, err := s.conn.Query(cached(ctx), leafQuery(ms, chunk), ms[0].q.Experiment, ms[0].q.Event, from)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	sums := make([][6]float64, len(ms))
	convs := make([]uint64, len(ms))
	var id uint32
	var c combination
	var day time.Time
	var users uint64
	var ipwDen float64
	targets := []any{&id, &c.multi, &c.variant, &day, &c.segment, &users, &ipwDen}
	for i := range ms {
		targets = append(targets, &convs[i])
		for j := range sums[i] {
			targets = append(targets, &sums[i][j])
		}
	}
	for rows.Next() {
		if err := rows.Scan(targets...); err != nil {
			return nil, err
		}
		for i, m := range ms {
			n := out[i][id]
			if n == nil {
				continue
			}
			e := entry{c, users, convs[i], sums[i][0], sums[i][1], sums[i][2], sums[i][3], sums[i][4], sums[i][5], ipwDen}
			e.day = day.Unix()
			if !m.q.Daily {
				e.day = 0
			}
			n.add(e)
		}
	}
	return out, rows.Err()
}

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
// and the roots of ms that are not nil.
func (s *Store) store(ctx context.Context, ms []metric, chunk []uint32, leaves []map[uint32]*node, roots []*node, version uint64) error {
	if len(chunk) == 0 && !slices.ContainsFunc(roots, func(r *node) bool { return r != nil }) {
		return nil
	}
	batch, err := s.conn.PrepareBatch(ctx, insertSQL)
	if err != nil {
		return err
	}
	defer batch.Abort()
	for i, m := range ms {
		for _, id := range chunk {
			if err := batch.Append(leaves[i][id].values(m.q.Experiment, m.key, leafLevel, id, version)...); err != nil {
				return err
			}
		}
	}
	for i, r := range roots {
		if r != nil {
			if err := batch.Append(r.values(ms[i].q.Experiment, ms[i].key, rootLevel, 0, version)...); err != nil {
				return err
			}
		}
	}
	return batch.Send()
}
