package chsink

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"

	"github.com/liftlab/lift/ingest"
)

// InsertDeadLetters records dead letters (see amqpbus.DeadLetterLog). Recording one
// twice adds a row with the same id, which readers collapse.
func (s *Sink) InsertDeadLetters(ctx context.Context, letters []ingest.DeadLetter) error {
	if len(letters) == 0 {
		return nil
	}
	b, err := s.conn.PrepareBatch(ctx, "INSERT INTO dead_letters (at, id, seq, routing_key, reason, user_id, body)")
	if err != nil {
		return fmt.Errorf("chsink: insert %d dead letters: %w", len(letters), err)
	}
	for _, d := range letters {
		if err := b.Append(d.At, d.ID, d.Seq, d.RoutingKey, d.Reason, d.UserID, string(d.Body)); err != nil {
			_ = b.Abort()
			return fmt.Errorf("chsink: dead letter %x: %w", d.ID, err)
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("chsink: insert %d dead letters: %w", len(letters), err)
	}
	return nil
}

// The live view reads only the last day: the tables are ordered for analysis, not by
// arrival, so a bounded time range (which also prunes old monthly partitions) keeps
// each read to a scan of recent parts.
const feedSpan = 24 * time.Hour

func feedLimit(f ingest.FeedFilter) int {
	if f.Limit <= 0 || f.Limit > 500 {
		return 50
	}
	return f.Limit
}

// RecentEvents returns the newest events received in the last day (exposures are in
// RecentExposures), newest first, narrowed by type and user id. Rows not yet
// collapsed by the ReplacingMergeTree are shown once. Rows received beyond the clock
// plus ingest.MaxSkew (stored before the collector stopped believing a client's
// received_at) are left out: sorted first, they would take the page over.
func (s *Sink) RecentEvents(ctx context.Context, f ingest.FeedFilter) ([]ingest.Event, error) {
	now := time.Now()
	where := []string{"received_at >= ?", "received_at <= ?", "ts >= ?"}
	args := []any{now.Add(-feedSpan), now.Add(ingest.MaxSkew), now.Add(-feedSpan - ingest.MaxAge)}
	if f.Type != "" {
		where, args = append(where, "type = ?"), append(args, f.Type)
	}
	if f.UserID != "" {
		where, args = append(where, "user_id = ?"), append(args, f.UserID)
	}
	// Each duplicate takes a row of the limit: ask for a few more than shown.
	limit := feedLimit(f)
	rows, err := s.conn.Query(ctx, "SELECT event_id, type, user_id, ts, received_at, value, properties FROM events WHERE "+
		strings.Join(where, " AND ")+fmt.Sprintf(" ORDER BY received_at DESC, ts DESC LIMIT %d", 2*limit), args...)
	if err != nil {
		return nil, fmt.Errorf("chsink: recent events: %w", err)
	}
	return collect(rows, limit, func(r driver.Rows) (ingest.Event, uuid.UUID, error) {
		var e ingest.Event
		var props string
		err := r.Scan(&e.ID, &e.Type, &e.UserID, &e.Timestamp, &e.ReceivedAt, &e.Value, &props)
		e.Properties = []byte(props)
		return e, e.ID, err
	})
}

// RecentExposures returns the newest exposures of the last day, newest first,
// narrowed by experiment and user id, none from beyond the clock plus ingest.MaxSkew.
func (s *Sink) RecentExposures(ctx context.Context, f ingest.FeedFilter) ([]ingest.Event, error) {
	now := time.Now()
	where, args := []string{"ts >= ?", "ts <= ?"}, []any{now.Add(-feedSpan), now.Add(ingest.MaxSkew)}
	if f.Experiment != "" {
		where, args = append(where, "experiment = ?"), append(args, f.Experiment)
	}
	if f.UserID != "" {
		where, args = append(where, "user_id = ?"), append(args, f.UserID)
	}
	limit := feedLimit(f)
	rows, err := s.conn.Query(ctx, "SELECT event_id, ts, user_id, experiment, variant, segment, assignment_probability FROM exposures WHERE "+
		strings.Join(where, " AND ")+fmt.Sprintf(" ORDER BY ts DESC LIMIT %d", 2*limit), args...)
	if err != nil {
		return nil, fmt.Errorf("chsink: recent exposures: %w", err)
	}
	return collect(rows, limit, func(r driver.Rows) (ingest.Event, uuid.UUID, error) {
		e := ingest.Event{Type: ingest.TypeExposure, Exposure: &ingest.Exposure{}}
		err := r.Scan(&e.ID, &e.Timestamp, &e.UserID, &e.Exposure.Experiment, &e.Exposure.Variant, &e.Exposure.Segment, &e.Exposure.AssignmentProbability)
		e.ReceivedAt = e.Timestamp
		return e, e.ID, err
	})
}

// RecentDeadLetters returns the newest recorded dead letters in lift.dead's order,
// newest first, at most limit (50 when 0), each once.
func (s *Sink) RecentDeadLetters(ctx context.Context, limit int) ([]ingest.DeadLetter, error) {
	limit = feedLimit(ingest.FeedFilter{Limit: limit})
	rows, err := s.conn.Query(ctx, fmt.Sprintf("SELECT at, id, seq, routing_key, reason, user_id, body FROM dead_letters ORDER BY seq DESC LIMIT %d", 2*limit))
	if err != nil {
		return nil, fmt.Errorf("chsink: recent dead letters: %w", err)
	}
	return collect(rows, limit, func(r driver.Rows) (ingest.DeadLetter, uint64, error) {
		var d ingest.DeadLetter
		var body string
		err := r.Scan(&d.At, &d.ID, &d.Seq, &d.RoutingKey, &d.Reason, &d.UserID, &body)
		d.Body = []byte(body)
		return d, d.ID, err
	})
}

// collect scans up to limit rows, skipping repeated ids.
func collect[T any, ID comparable](rows driver.Rows, limit int, scan func(driver.Rows) (T, ID, error)) ([]T, error) {
	defer rows.Close()
	out := []T{}
	seen := map[ID]bool{}
	for rows.Next() && len(out) < limit {
		v, id, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("chsink: scan: %w", err)
		}
		if !seen[id] {
			seen[id] = true
			out = append(out, v)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("chsink: read: %w", err)
	}
	return out, nil
}

// DeadLetterCount counts the recorded dead letters of the last day.
func (s *Sink) DeadLetterCount(ctx context.Context) (uint64, error) {
	var n uint64
	if err := s.conn.QueryRow(ctx, "SELECT uniqExact(id) FROM dead_letters WHERE at >= ?", time.Now().Add(-feedSpan)).Scan(&n); err != nil {
		return 0, fmt.Errorf("chsink: count dead letters: %w", err)
	}
	return n, nil
}
