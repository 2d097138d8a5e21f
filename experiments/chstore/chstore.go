// Package chstore computes experiment results from the events and exposures lift
// stores in ClickHouse. The SQL runs on ClickHouse 18.16 and current releases.
package chstore

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/liftlab/lift/experiments"
	"github.com/liftlab/lift/internal/chconn"
)

// Store implements experiments.EventStore.
type Store struct {
	conn driver.Conn
}

// Open connects lazily to the database at addr (native protocol).
func Open(addr, database string) (*Store, error) {
	conn, err := chconn.Open(addr, database, 60*time.Second)
	if err != nil {
		return nil, fmt.Errorf("chstore: %w", err)
	}
	return &Store{conn: conn}, nil
}

// Close closes the connections.
func (s *Store) Close() error { return s.conn.Close() }

// metricSQL computes a metric in one pass over the experiment's exposures and the
// goal's events, grouped by user: the variant and time of the first exposure, whether
// the user saw more than one variant (min ≠ max), and the user's events kept in
// arrays, filtered to the attribution window after the first exposure — and to the
// pre-exposure period for CUPED's covariate (the same metric before exposure); and
// the inverse-propensity sums Σ y/p and Σ 1/p over users, p being the probability
// logged with their first exposure, which bandit reports need. One GROUP BY
// instead of a join keeps it fast on large experiments; FINAL drops redelivered
// duplicates of events (duplicate exposures change none of min, argMin or max).
// Notes for ClickHouse 18.16: lambdas there cannot see the row's other columns, so the
// first-exposure time is passed in as an array (replicate); and every alias differs
// from the column names, because 18.16 resolves a reused alias at an outer level to
// the inner expression.
const metricSQL = `
SELECT if(multi, 1, 0) AS is_multi, arm, grp, count() AS users, sum(conv) AS conversions,
       sum(uv) AS value_sum, sum(uv * uv) AS value_sumsq,
       sum(pre) AS pre_sum, sum(pre * pre) AS pre_sumsq, sum(pre * if(? = 'conversion', conv, uv)) AS pre_cross,
       sum(if(prob > 0, if(? = 'conversion', conv, uv) / prob, 0)) AS ipw_num, sum(if(prob > 0, 1 / prob, 0)) AS ipw_den
FROM (
    SELECT arm, grp, vmin != vmax AS multi, prob,
           arrayExists((t, f) -> t >= f AND t < f + ?, ets, replicate(fts, ets)) AS conv,
           arraySum(arrayMap((t, x, f) -> if(t >= f AND t < f + ?, x, 0), ets, evals, replicate(fts, ets))) AS uv,
           if(? = 'conversion',
              toFloat64(arrayExists((t, f) -> t >= f - ? AND t < f, ets, replicate(fts, ets))),
              arraySum(arrayMap((t, x, f) -> if(t >= f - ? AND t < f, x, 0), ets, evals, replicate(fts, ets)))) AS pre
    FROM (
        SELECT user_id,
               argMinIf(variant, ts, is_exp = 1) AS arm,
               minIf(ts, is_exp = 1) AS fts,
               minIf(variant, is_exp = 1) AS vmin,
               maxIf(variant, is_exp = 1) AS vmax,
               countIf(is_exp = 1) AS nexp,
               argMinIf(p_assign, ts, is_exp = 1) AS prob,
               %s AS grp,
               groupArrayIf(ts, is_exp = 0) AS ets,
               groupArrayIf(val, is_exp = 0) AS evals
        FROM (
            SELECT user_id, variant, ts, segment, 1 AS is_exp, toFloat64(0) AS val, assignment_probability AS p_assign
            FROM exposures WHERE experiment = ?
            UNION ALL
            SELECT user_id, '' AS variant, ts, '' AS segment, 0 AS is_exp, value AS val, toFloat64(0) AS p_assign
            FROM events FINAL
            WHERE type = ? AND ts >= (SELECT min(ts) FROM exposures WHERE experiment = ?) - ?
        )
        GROUP BY user_id
        HAVING nexp > 0
    )
)
GROUP BY is_multi, arm, grp
ORDER BY is_multi, arm, grp`

var groupExpr = map[experiments.Breakdown]string{
	experiments.Overall:   "''",
	experiments.ByDay:     "toString(toDate(minIf(ts, is_exp = 1)))",
	experiments.BySegment: "argMinIf(segment, ts, is_exp = 1)",
}

// MetricAggregates returns per-variant (and per-group) aggregates of one metric.
func (s *Store) MetricAggregates(ctx context.Context, q experiments.MetricQuery, by experiments.Breakdown) (experiments.MetricData, error) {
	expr, ok := groupExpr[by]
	if !ok {
		return experiments.MetricData{}, fmt.Errorf("chstore: unknown breakdown %q", by)
	}
	window := uint32(q.Window / time.Second)
	pre := uint32(experiments.PrePeriod / time.Second)
	rows, err := s.conn.Query(ctx, fmt.Sprintf(metricSQL, expr),
		q.Kind, q.Kind, window, window, q.Kind, pre, pre, q.Experiment, q.Event, q.Experiment, pre)
	if err != nil {
		return experiments.MetricData{}, fmt.Errorf("chstore: metric %s of %q: %w", q.Event, q.Experiment, err)
	}
	defer rows.Close()
	var data experiments.MetricData
	for rows.Next() {
		var a experiments.ArmAggregate
		var multi uint8
		var users, conversions uint64
		if err := rows.Scan(&multi, &a.Variant, &a.Group, &users, &conversions, &a.Sum, &a.SumSq,
			&a.PreSum, &a.PreSumSq, &a.PreCross, &a.IPWNum, &a.IPWDen); err != nil {
			return experiments.MetricData{}, fmt.Errorf("chstore: metric %s of %q: %w", q.Event, q.Experiment, err)
		}
		a.Users, a.Conversions = float64(users), float64(conversions)
		if multi == 1 {
			data.MultiVariantUsers += a.Users
			if !q.KeepMultiVariant {
				continue
			}
		}
		data.Arms = merge(data.Arms, a)
	}
	if err := rows.Err(); err != nil {
		return experiments.MetricData{}, fmt.Errorf("chstore: metric %s of %q: %w", q.Event, q.Experiment, err)
	}
	return data, nil
}

// LatestEvent is the receive time of the newest stored event.
func (s *Store) LatestEvent(ctx context.Context) (time.Time, error) {
	var t time.Time
	if err := s.conn.QueryRow(ctx, "SELECT max(received_at) FROM events").Scan(&t); err != nil {
		return time.Time{}, fmt.Errorf("chstore: latest event: %w", err)
	}
	if t.Unix() <= 0 {
		return time.Time{}, nil // max of no rows is the epoch: there are no events yet
	}
	return t, nil
}

// merge adds a to the aggregate of the same variant and group, or appends it.
func merge(arms []experiments.ArmAggregate, a experiments.ArmAggregate) []experiments.ArmAggregate {
	for i := range arms {
		if arms[i].Variant == a.Variant && arms[i].Group == a.Group {
			b := &arms[i]
			b.Users += a.Users
			b.Conversions += a.Conversions
			b.Sum += a.Sum
			b.SumSq += a.SumSq
			b.PreSum += a.PreSum
			b.PreSumSq += a.PreSumSq
			b.PreCross += a.PreCross
			b.IPWNum += a.IPWNum
			b.IPWDen += a.IPWDen
			return arms
		}
	}
	return append(arms, a)
}
