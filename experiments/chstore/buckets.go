package chstore

import (
	"context"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/liftlab/lift/experiments"
)

// Users fall into buckets by cityHash64(user_id) % buckets, the expression of
// migration 00004's materialized views. Everything about a user's metric depends on
// their own rows only, so a bucket's aggregates change only when rows of its users
// arrive (or are deleted).
const buckets = 4096

// chunkBuckets bounds how many buckets one query computes, which bounds its memory
// when a whole experiment is computed for the first time.
const chunkBuckets = 1024

// sqlVersion is part of every metric's key in metric_buckets: bump it whenever
// computeSQL changes what it returns, so that old aggregates are computed again.
const sqlVersion = 1

// metric is a MetricQuery as metric_buckets knows it.
type metric struct {
	q     experiments.MetricQuery
	key   string // metric_buckets.metric
	where string // SQL of q.Where
}

func newMetric(q experiments.MetricQuery) (metric, error) {
	if q.Kind != "conversion" && q.Kind != "value" {
		return metric{}, fmt.Errorf("chstore: metric %s of %q: unknown kind %q", q.Event, q.Experiment, q.Kind)
	}
	where := whereSQL(q.Where)
	key := fmt.Sprintf("v%d/%s/%s/%d", sqlVersion, q.Kind, q.Event, int64(q.Window/time.Second))
	if q.Where != nil {
		// The condition's SQL identifies it (ParseWhere sorts keys); a hash keeps
		// the key short.
		h := fnv.New64a()
		h.Write([]byte(where))
		key += fmt.Sprintf("/%016x", h.Sum64())
	}
	return metric{q: q, key: key, where: where}, nil
}

// computeSQL computes a metric within some buckets in one pass over the experiment's
// exposures and the goal's events, grouped by user: the first exposure (the smallest
// (ts, variant, segment, probability), so that ties are broken the same way every
// time), whether the user saw more than one variant (min ≠ max), and the user's
// events kept in arrays, filtered to the attribution window after the first exposure
// and to the pre-exposure period for CUPED's covariate (the same metric before
// exposure); and the inverse-propensity sums Σ y/p and Σ 1/p over users, p being the
// probability logged with their first exposure, which bandit reports need. One GROUP
// BY instead of a join keeps it fast; FINAL drops redelivered duplicates of events
// (duplicate exposures change none of min and max). The result is one row per bucket
// and combination of multi-variant flag, variant, day and segment of first exposure.
// Notes for ClickHouse 18.16: lambdas there cannot see the row's other columns, so the
// first-exposure time is passed in as an array (replicate); and every alias differs
// from the column names, because 18.16 resolves a reused alias at an outer level to
// the inner expression.
const computeSQL = `
SELECT bkt, is_multi, arm, day1, seg, count() AS n, sum(conv) AS conversions,
       sum(uv) AS v_sum, sum(uv * uv) AS v_sumsq, sum(pre) AS p_sum, sum(pre * pre) AS p_sumsq, sum(pre * y) AS p_cross,
       sum(if(prob > 0, y / prob, 0)) AS i_num, sum(if(prob > 0, 1 / prob, 0)) AS i_den
FROM (
    SELECT toUInt16(cityHash64(uid) % 4096) AS bkt, toUInt8(vmin != vmax) AS is_multi,
           tupleElement(fe, 2) AS arm, toDate(fts) AS day1, tupleElement(fe, 3) AS seg, tupleElement(fe, 4) AS prob,
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
            WHERE experiment = ? {buckets}
            UNION ALL
            SELECT user_id, '' AS variant, ts, '' AS segment, 0 AS is_exp, value AS val, toFloat64(0) AS p_assign
            FROM events FINAL
            WHERE type = ? AND ts >= (SELECT min(ts) FROM exposures WHERE experiment = ?) - ? AND {where} {buckets}
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

// bucketRowsSQL reads how many rows each bucket of the experiment's exposures and of
// the event type has received.
const bucketRowsSQL = `
SELECT bucket, sumIf(rows, source = 'exposures') AS x_rows, sumIf(rows, source = 'events') AS e_rows
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

const stampsSQL = `
SELECT bucket, exposure_rows, event_rows, generation
FROM metric_buckets FINAL
WHERE experiment = ? AND metric = ?`

const insertSQL = `INSERT INTO metric_buckets (experiment, metric, bucket, exposure_rows, event_rows, generation, version,
    multi, variant, day, segment, users, conversions, value_sum, value_sumsq, pre_sum, pre_sumsq, pre_cross, ipw_num, ipw_den)`

// stamp is what a bucket's aggregates were computed from.
type stamp struct {
	exposureRows, eventRows, generation uint64
}

// bucketAggregates is one metric_buckets row: per combination, the sums.
type bucketAggregates struct {
	multi                                                  []uint8
	variant, segment                                       []string
	day                                                    []time.Time
	users, conversions                                     []uint64
	sum, sumSq, preSum, preSumSq, preCross, ipwNum, ipwDen []float64
}

// lock serialises refreshes of one metric within this process: the second caller
// then finds the buckets the first computed and only computes what arrived since.
func (s *Store) lock(m metric) func() {
	mu, _ := s.locks.LoadOrStore(m.q.Experiment+"\x00"+m.key, new(sync.Mutex))
	mu.(*sync.Mutex).Lock()
	return mu.(*sync.Mutex).Unlock
}

// refresh computes again every bucket whose rows changed since its aggregates were
// stored, and stores them. Counts are read before the data, and a materialized view
// writes its rows only after the rows it saw are in their table, so the aggregates
// stored cover at least the rows their stamp counts: a stamp never claims rows the
// aggregates lack. Two processes refreshing the same bucket at once both store
// correct aggregates; the later read of counts wins.
func (s *Store) refresh(ctx context.Context, m metric) error {
	defer s.lock(m)()
	version := uint64(s.now().UnixNano())
	var want [buckets]stamp
	rows, err := s.conn.Query(ctx, bucketRowsSQL, m.q.Experiment, m.q.Event)
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
	var gen uint64
	if err := s.conn.QueryRow(ctx, generationSQL).Scan(&gen); err != nil {
		return err
	}
	for b := range want {
		want[b].generation = gen
	}

	var have [buckets]stamp
	var stored [buckets]bool
	rows, err = s.conn.Query(ctx, stampsSQL, m.q.Experiment, m.key)
	if err != nil {
		return err
	}
	for rows.Next() {
		var b uint16
		var st stamp
		if err := rows.Scan(&b, &st.exposureRows, &st.eventRows, &st.generation); err != nil {
			rows.Close()
			return err
		}
		have[b], stored[b] = st, true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}

	var stale []uint16
	for b := range want {
		if !stored[b] || have[b] != want[b] {
			stale = append(stale, uint16(b))
		}
	}
	for len(stale) > 0 {
		chunk := stale[:min(len(stale), chunkBuckets)]
		stale = stale[len(chunk):]
		aggs, err := s.compute(ctx, m, chunk)
		if err != nil {
			return err
		}
		if err := s.store(ctx, m, chunk, aggs, want, version); err != nil {
			return err
		}
	}
	return nil
}

// compute runs computeSQL over the given buckets (all of them when the list is
// complete).
func (s *Store) compute(ctx context.Context, m metric, chunk []uint16) (map[uint16]*bucketAggregates, error) {
	filter := ""
	if len(chunk) < buckets {
		var b strings.Builder
		b.WriteString("AND cityHash64(user_id) % 4096 IN (")
		for i, k := range chunk {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.Itoa(int(k)))
		}
		b.WriteByte(')')
		filter = b.String()
	}
	exprs := kindExprs[m.q.Kind]
	sql := strings.NewReplacer("{pre}", exprs[0], "{y}", exprs[1], "{where}", m.where, "{buckets}", filter).Replace(computeSQL)
	window := uint32(m.q.Window / time.Second)
	pre := uint32(experiments.PrePeriod / time.Second)
	rows, err := s.conn.Query(ctx, sql, window, window, pre, m.q.Experiment, m.q.Event, m.q.Experiment, pre)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[uint16]*bucketAggregates{}
	for rows.Next() {
		var b uint16
		var multi uint8
		var variant, segment string
		var day time.Time
		var users, conversions uint64
		var sum, sumSq, preSum, preSumSq, preCross, ipwNum, ipwDen float64
		if err := rows.Scan(&b, &multi, &variant, &day, &segment, &users, &conversions,
			&sum, &sumSq, &preSum, &preSumSq, &preCross, &ipwNum, &ipwDen); err != nil {
			return nil, err
		}
		a := out[b]
		if a == nil {
			a = &bucketAggregates{}
			out[b] = a
		}
		a.multi = append(a.multi, multi)
		a.variant = append(a.variant, variant)
		a.day = append(a.day, day)
		a.segment = append(a.segment, segment)
		a.users = append(a.users, users)
		a.conversions = append(a.conversions, conversions)
		a.sum = append(a.sum, sum)
		a.sumSq = append(a.sumSq, sumSq)
		a.preSum = append(a.preSum, preSum)
		a.preSumSq = append(a.preSumSq, preSumSq)
		a.preCross = append(a.preCross, preCross)
		a.ipwNum = append(a.ipwNum, ipwNum)
		a.ipwDen = append(a.ipwDen, ipwDen)
	}
	return out, rows.Err()
}

// store writes one row per bucket of chunk, empty for buckets without users, so that
// they too are known to be computed.
func (s *Store) store(ctx context.Context, m metric, chunk []uint16, aggs map[uint16]*bucketAggregates, want [buckets]stamp, version uint64) error {
	batch, err := s.conn.PrepareBatch(ctx, insertSQL)
	if err != nil {
		return err
	}
	defer batch.Abort()
	empty := &bucketAggregates{}
	for _, b := range chunk {
		a := aggs[b]
		if a == nil {
			a = empty
		}
		st := want[b]
		if err := batch.Append(m.q.Experiment, m.key, b, st.exposureRows, st.eventRows, st.generation, version,
			nonNil(a.multi), nonNil(a.variant), nonNil(a.day), nonNil(a.segment), nonNil(a.users), nonNil(a.conversions),
			nonNil(a.sum), nonNil(a.sumSq), nonNil(a.preSum), nonNil(a.preSumSq), nonNil(a.preCross),
			nonNil(a.ipwNum), nonNil(a.ipwDen)); err != nil {
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
