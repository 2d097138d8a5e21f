// Package chstore computes experiment results from the events and exposures lift
// stores in ClickHouse. The SQL runs on ClickHouse 18.16 and current releases.
package chstore

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/liftlab/lift/experiments"
)

// Store implements experiments.EventStore.
type Store struct {
	conn driver.Conn
}

// Open connects lazily to the database at addr (native protocol).
func Open(addr, database string) (*Store, error) {
	conn, err := clickhouse.Open(&clickhouse.Options{
		Addr:        []string{addr},
		Protocol:    clickhouse.Native,
		Auth:        clickhouse.Auth{Database: database, Username: "default"},
		DialTimeout: 3 * time.Second,
		ReadTimeout: 60 * time.Second,
	})
	if err != nil {
		return nil, fmt.Errorf("chstore: open %s/%s: %w", addr, database, err)
	}
	return &Store{conn: conn}, nil
}

// Close closes the connections.
func (s *Store) Close() error { return s.conn.Close() }

// metricSQL counts each user once, in the variant of their first exposure, leaving out
// users exposed to several variants; joins their goal events (deduplicated with FINAL)
// and keeps those within the attribution window after the first exposure. Aliases are
// all distinct from column names: ClickHouse 18.16 resolves a reused alias in an outer
// query level to the inner expression and sums it twice.
const metricSQL = `
SELECT arm, grp, count() AS users, sum(converted) AS conversions,
       sum(user_value) AS value_sum, sum(user_value * user_value) AS value_sumsq
FROM (
    SELECT user_id, any(u_arm) AS arm, any(u_grp) AS grp,
           max(in_window) AS converted, sum(if(in_window, ev_value, 0)) AS user_value
    FROM (
        SELECT user_id, u_arm, u_grp, ev_value,
               (ev_ts >= first_ts AND ev_ts < first_ts + ?) AS in_window
        FROM (
            SELECT user_id, argMin(variant, ts) AS u_arm, min(ts) AS first_ts, %s AS u_grp
            FROM exposures
            WHERE experiment = ?
            GROUP BY user_id
            HAVING uniqExact(variant) = 1
        )
        ALL LEFT JOIN (
            SELECT user_id, ts AS ev_ts, value AS ev_value
            FROM events FINAL
            WHERE type = ? AND user_id IN (SELECT user_id FROM exposures WHERE experiment = ?)
        ) USING user_id
    )
    GROUP BY user_id
)
GROUP BY arm, grp
ORDER BY arm, grp`

var groupExpr = map[experiments.Breakdown]string{
	experiments.Overall:   "''",
	experiments.ByDay:     "toString(toDate(min(ts)))",
	experiments.BySegment: "argMin(segment, ts)",
}

// MetricAggregates returns per-variant (and per-group) aggregates of one metric.
func (s *Store) MetricAggregates(ctx context.Context, q experiments.MetricQuery, by experiments.Breakdown) (experiments.MetricData, error) {
	expr, ok := groupExpr[by]
	if !ok {
		return experiments.MetricData{}, fmt.Errorf("chstore: unknown breakdown %q", by)
	}
	rows, err := s.conn.Query(ctx, fmt.Sprintf(metricSQL, expr),
		uint32(q.Window/time.Second), q.Experiment, q.Event, q.Experiment)
	if err != nil {
		return experiments.MetricData{}, fmt.Errorf("chstore: metric %s of %q: %w", q.Event, q.Experiment, err)
	}
	defer rows.Close()
	var data experiments.MetricData
	for rows.Next() {
		var a experiments.ArmAggregate
		var users uint64
		var conversions uint64
		if err := rows.Scan(&a.Variant, &a.Group, &users, &conversions, &a.Sum, &a.SumSq); err != nil {
			return experiments.MetricData{}, fmt.Errorf("chstore: metric %s of %q: %w", q.Event, q.Experiment, err)
		}
		a.Users, a.Conversions = float64(users), float64(conversions)
		data.Arms = append(data.Arms, a)
	}
	if err := rows.Err(); err != nil {
		return experiments.MetricData{}, fmt.Errorf("chstore: metric %s of %q: %w", q.Event, q.Experiment, err)
	}
	var multi uint64
	err = s.conn.QueryRow(ctx, `
		SELECT count() FROM (
			SELECT user_id FROM exposures WHERE experiment = ? GROUP BY user_id HAVING uniqExact(variant) > 1
		)`, q.Experiment).Scan(&multi)
	if err != nil {
		return experiments.MetricData{}, fmt.Errorf("chstore: multi-variant users of %q: %w", q.Experiment, err)
	}
	data.MultiVariantUsers = float64(multi)
	return data, nil
}

// LatestEvent is the receive time of the newest stored event.
func (s *Store) LatestEvent(ctx context.Context) (time.Time, error) {
	var t time.Time
	if err := s.conn.QueryRow(ctx, "SELECT max(received_at) FROM events").Scan(&t); err != nil {
		return time.Time{}, fmt.Errorf("chstore: latest event: %w", err)
	}
	return t, nil
}
