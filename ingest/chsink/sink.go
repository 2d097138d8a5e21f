// Package chsink stores events in ClickHouse: events in lift.events and $exposure
// events in lift.exposures, through the native protocol's batch API with an explicit
// column list (the only insert path that works on ClickHouse 18.16, see DESIGN.md).
package chsink

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/liftlab/lift/ingest"
	"github.com/liftlab/lift/internal/chconn"
)

// Sink inserts batches into one ClickHouse database.
type Sink struct {
	conn driver.Conn
}

// Open connects lazily to the database at addr (host:port, native protocol); it fails
// only on invalid options, so a consumer can start while ClickHouse is down.
func Open(addr, database string) (*Sink, error) {
	conn, err := chconn.Open(addr, database, 30*time.Second)
	if err != nil {
		return nil, fmt.Errorf("chsink: %w", err)
	}
	return &Sink{conn: conn}, nil
}

// Close closes the connections.
func (s *Sink) Close() error { return s.conn.Close() }

// Ping checks that ClickHouse answers, for /readyz.
func (s *Sink) Ping(ctx context.Context) error { return s.conn.Ping(ctx) }

// Insert writes the batch, events and exposures each in one insert. Duplicates
// within the batch are removed first (materialized views see every inserted row);
// duplicates across batches collapse in the ReplacingMergeTree tables. It returns an
// error if either insert fails; retrying the whole batch is then safe.
func (s *Sink) Insert(ctx context.Context, batch []ingest.Event) error {
	batch = ingest.Dedup(batch)
	var events, exposures []ingest.Event
	for _, e := range batch {
		if e.Type == ingest.TypeExposure {
			exposures = append(exposures, e)
		} else {
			events = append(events, e)
		}
	}
	if len(events) > 0 {
		err := s.send(ctx, "INSERT INTO events (event_id, type, user_id, ts, received_at, value, properties)",
			events, func(b driver.Batch, e ingest.Event) error {
				props := string(e.Properties)
				if props == "" {
					props = "{}"
				}
				return b.Append(e.ID, e.Type, e.UserID, e.Timestamp, e.ReceivedAt, e.Value, props)
			})
		if err != nil {
			return fmt.Errorf("chsink: insert %d events: %w", len(events), err)
		}
	}
	if len(exposures) > 0 {
		err := s.send(ctx, "INSERT INTO exposures (event_id, ts, user_id, experiment, variant, segment, assignment_probability)",
			exposures, func(b driver.Batch, e ingest.Event) error {
				x := e.Exposure
				return b.Append(e.ID, e.Timestamp, e.UserID, x.Experiment, x.Variant, x.Segment, x.AssignmentProbability)
			})
		if err != nil {
			return fmt.Errorf("chsink: insert %d exposures: %w", len(exposures), err)
		}
	}
	return nil
}

func (s *Sink) send(ctx context.Context, query string, rows []ingest.Event, appendRow func(driver.Batch, ingest.Event) error) error {
	b, err := s.conn.PrepareBatch(ctx, query)
	if err != nil {
		return err
	}
	for _, e := range rows {
		if err := appendRow(b, e); err != nil {
			_ = b.Abort()
			return fmt.Errorf("event %s: %w", e.ID, err)
		}
	}
	return b.Send()
}
