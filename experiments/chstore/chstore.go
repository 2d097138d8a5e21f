// Package chstore computes experiment results from the events and exposures lift
// stores in ClickHouse. The SQL runs on ClickHouse 18.16 and current releases.
//
// Results are kept per bucket of users (metric_buckets, migration 00004) and only the
// buckets that received rows since they were computed are computed again, so reading
// a metric costs little more than summing 4,096 small rows however large the
// experiment is; see buckets.go and docs/analytics.md ("How results stay fast").
package chstore

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/liftlab/lift/experiments"
	"github.com/liftlab/lift/internal/chconn"
)

// Store implements experiments.EventStore.
type Store struct {
	conn driver.Conn
	// locks holds a *sync.Mutex per experiment and metric (see lock).
	locks sync.Map
	now   func() time.Time
}

// Open connects lazily to the database at addr (native protocol).
func Open(addr, database string) (*Store, error) {
	conn, err := chconn.Open(addr, database, 10*time.Minute)
	if err != nil {
		return nil, fmt.Errorf("chstore: %w", err)
	}
	return &Store{conn: conn, now: time.Now}, nil
}

// Close closes the connections.
func (s *Store) Close() error { return s.conn.Close() }

// groupExpr is the breakdown group of a combination of metric_buckets' arrays, as
// named in sumSQL's ARRAY JOIN.
var groupExpr = map[experiments.Breakdown]string{
	experiments.Overall:   "''",
	experiments.ByDay:     "toString(d)",
	experiments.BySegment: "s",
}

// sumSQL adds up a metric's buckets. Aliases differ from the column names because
// 18.16 resolves a reused alias at an outer level to the inner expression.
const sumSQL = `
SELECT m, v, %s AS grp, sum(u) AS n, sum(c) AS conv, sum(vs) AS v_sum, sum(vq) AS v_sumsq,
       sum(ps) AS pre_s, sum(pq) AS pre_q, sum(pc) AS pre_c, sum(inum) AS ipw_n, sum(iden) AS ipw_d
FROM metric_buckets FINAL
ARRAY JOIN multi AS m, variant AS v, day AS d, segment AS s, users AS u, conversions AS c,
           value_sum AS vs, value_sumsq AS vq, pre_sum AS ps, pre_sumsq AS pq, pre_cross AS pc,
           ipw_num AS inum, ipw_den AS iden
WHERE experiment = ? AND metric = ?
GROUP BY m, v, grp
ORDER BY m, v, grp`

// MetricAggregates returns per-variant (and per-group) aggregates of one metric. It
// first computes the buckets whose data changed since they were last computed, so the
// answer covers every row stored before the call.
func (s *Store) MetricAggregates(ctx context.Context, q experiments.MetricQuery, by experiments.Breakdown) (experiments.MetricData, error) {
	expr, ok := groupExpr[by]
	if !ok {
		return experiments.MetricData{}, fmt.Errorf("chstore: unknown breakdown %q", by)
	}
	m, err := newMetric(q)
	if err != nil {
		return experiments.MetricData{}, err
	}
	if err := s.refresh(ctx, m); err != nil {
		return experiments.MetricData{}, fmt.Errorf("chstore: metric %s of %q: %w", q.Event, q.Experiment, err)
	}
	rows, err := s.conn.Query(ctx, fmt.Sprintf(sumSQL, expr), q.Experiment, m.key)
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
