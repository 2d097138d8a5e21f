// Package chstore reads recommenders' training data from ClickHouse's events table:
// each user's decayed weight per item, aggregated in ClickHouse, and the popular
// items of the last day. The SQL runs on ClickHouse 18.16 and current releases
// (visitParamExtract*, not JSONExtract*).
package chstore

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/liftlab/lift/experiments/recommend"
	"github.com/liftlab/lift/internal/chconn"
)

// Store implements recommend.Source.
type Store struct {
	conn driver.Conn
}

// Open connects lazily to the database at addr (host:port, native protocol).
func Open(addr, database string) (*Store, error) {
	conn, err := chconn.Open(addr, database, 10*time.Minute) // training reads are long
	if err != nil {
		return nil, fmt.Errorf("recommend/chstore: %w", err)
	}
	return &Store{conn: conn}, nil
}

// Close closes the connections.
func (s *Store) Close() error { return s.conn.Close() }

// item is the SQL of an event's item: the property as a string, or its JSON text
// (numbers); ” when absent. The property is a top-level one.
const item = `if(visitParamExtractString(properties, ?) != '', visitParamExtractString(properties, ?), visitParamExtractRaw(properties, ?))`

func typeWeights(s recommend.Spec) ([]string, []float64) {
	types := make([]string, len(s.EventTypes))
	weights := make([]float64, len(s.EventTypes))
	for i, t := range s.EventTypes {
		types[i], weights[i] = t, 1
		if w, ok := s.Weights[t]; ok {
			weights[i] = w
		}
	}
	return types, weights
}

// Interactions implements recommend.Source: events of users who consented to
// personalisation, since now − History, weighted by type and halved every HalfLife,
// summed per user and item and read ordered by user. Events are read without FINAL:
// a duplicate left by a redelivery (rare, and merged away in time) counts twice.
func (s *Store) Interactions(ctx context.Context, spec recommend.Spec, now time.Time, add func(user, item string, weight float64)) error {
	types, weights := typeWeights(spec)
	rate := math.Ln2 / math.Max(spec.HalfLife.Seconds(), 1)
	rows, err := s.conn.Query(ctx, `SELECT user_id, item, sum(w) FROM (
			SELECT user_id, `+item+` AS item,
				transform(type, ?, ?, toFloat64(0)) * exp(toFloat64(toInt64(toUInt32(ts)) - ?) * ?) AS w
			FROM events
			WHERE type IN (SELECT arrayJoin(?)) AND ts >= toDateTime(?) AND ts <= toDateTime(?) AND personalization = 1)
		WHERE item != '' GROUP BY user_id, item ORDER BY user_id`,
		spec.ItemProperty, spec.ItemProperty, spec.ItemProperty, types, weights, now.Unix(), rate,
		types, now.Add(-spec.History).Unix(), now.Unix())
	if err != nil {
		return fmt.Errorf("recommend/chstore: interactions: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var user, it string
		var w float64
		if err := rows.Scan(&user, &it, &w); err != nil {
			return fmt.Errorf("recommend/chstore: interactions: %w", err)
		}
		add(user, it, w)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("recommend/chstore: interactions: %w", err)
	}
	return nil
}

// Popular implements recommend.Source: the 500 items with the most type weight over
// the day before now, from every event (popularity profiles nobody).
func (s *Store) Popular(ctx context.Context, spec recommend.Spec, now time.Time) ([]recommend.ItemWeight, error) {
	types, weights := typeWeights(spec)
	rows, err := s.conn.Query(ctx, `SELECT item, sum(w) AS weight FROM (
			SELECT `+item+` AS item, transform(type, ?, ?, toFloat64(0)) AS w
			FROM events
			WHERE type IN (SELECT arrayJoin(?)) AND ts >= toDateTime(?) AND ts <= toDateTime(?))
		WHERE item != '' GROUP BY item ORDER BY weight DESC, item LIMIT 500`,
		spec.ItemProperty, spec.ItemProperty, spec.ItemProperty, types, weights,
		types, now.Add(-24*time.Hour).Unix(), now.Unix())
	if err != nil {
		return nil, fmt.Errorf("recommend/chstore: popular items: %w", err)
	}
	defer rows.Close()
	var out []recommend.ItemWeight
	for rows.Next() {
		var iw recommend.ItemWeight
		if err := rows.Scan(&iw.Item, &iw.Weight); err != nil {
			return nil, fmt.Errorf("recommend/chstore: popular items: %w", err)
		}
		out = append(out, iw)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("recommend/chstore: popular items: %w", err)
	}
	return out, nil
}
