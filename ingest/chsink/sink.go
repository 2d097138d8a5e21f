// Package chsink stores events in ClickHouse: events in lift.events and $exposure
// events in lift.exposures, through the native protocol's batch API with an explicit
// column list (the only insert path that works on ClickHouse 18.16, see docs/storage.md).
package chsink

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"

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

// Insert writes the batch, events and exposures each in one insert. Duplicates
// within the batch are removed first (materialized views see every inserted row);
// duplicates across batches collapse in the ReplacingMergeTree tables. It returns an
// error if either insert fails; retrying the whole batch is then safe.
func (s *Sink) Insert(ctx context.Context, batch []ingest.Event) error {
	batch = ingest.Dedup(batch)
	events, exposures := batch, []ingest.Event(nil)
	if n := countExposures(batch); n > 0 {
		events, exposures = make([]ingest.Event, 0, len(batch)-n), make([]ingest.Event, 0, n)
		for _, e := range batch {
			if e.Type == ingest.TypeExposure {
				exposures = append(exposures, e)
			} else {
				events = append(events, e)
			}
		}
	}
	if len(events) > 0 {
		if err := s.insertEvents(ctx, events); err != nil {
			return fmt.Errorf("chsink: insert %d events: %w", len(events), err)
		}
	}
	if len(exposures) > 0 {
		if err := s.insertExposures(ctx, exposures); err != nil {
			return fmt.Errorf("chsink: insert %d exposures: %w", len(exposures), err)
		}
	}
	return nil
}

func countExposures(batch []ingest.Event) int {
	n := 0
	for i := range batch {
		if batch[i].Type == ingest.TypeExposure {
			n++
		}
	}
	return n
}

// The inserts hand the driver whole columns: appending row by row converts every
// value through reflection.

func (s *Sink) insertEvents(ctx context.Context, rows []ingest.Event) error {
	n := len(rows)
	var (
		ids      = make([]uuid.UUID, n)
		types    = make([]string, n)
		users    = make([]string, n)
		ts       = make([]time.Time, n)
		received = make([]time.Time, n)
		values   = make([]float64, n)
		props    = make([][]byte, n)
		// Segment rebuilds read only events consented to personalisation.
		personalization = make([]uint8, n)
		// Export and erasure trust identity links by source.
		sources = make([]string, n)
		// The top-level properties, which conditions read (migration 00046).
		propKeys    = make([][]string, n)
		propTypes   = make([][]int8, n)
		propStrings = make([][]string, n)
		propNumbers = make([][]float64, n)
	)
	for i, e := range rows {
		ids[i], types[i], users[i], ts[i], received[i], values[i], props[i] =
			e.ID, e.Type, e.UserID, e.Timestamp, e.ReceivedAt, e.Value, e.Properties
		if len(props[i]) == 0 {
			props[i] = emptyObject
		}
		if e.Consent.Allows(ingest.ForPersonalization) {
			personalization[i] = 1
		}
		sources[i] = string(ingest.ParseSource(string(e.Source))) // unset: unknown, not trusted
		c := ingest.ExtractProperties(props[i])
		propKeys[i], propStrings[i], propNumbers[i] = c.Keys, c.Strings, c.Numbers
		propTypes[i] = make([]int8, len(c.Types))
		for j, t := range c.Types {
			propTypes[i][j] = int8(t)
		}
	}
	return s.send(ctx, "INSERT INTO events (event_id, type, user_id, ts, received_at, value, properties, personalization, source, prop_keys, prop_types, prop_strings, prop_numbers)",
		ids, types, users, ts, received, values, props, personalization, sources, propKeys, propTypes, propStrings, propNumbers)
}

var emptyObject = []byte("{}")

func (s *Sink) insertExposures(ctx context.Context, rows []ingest.Event) error {
	n := len(rows)
	var (
		ids         = make([]uuid.UUID, n)
		ts          = make([]time.Time, n)
		users       = make([]string, n)
		experiments = make([]string, n)
		variants    = make([]string, n)
		segments    = make([]string, n)
		probs       = make([]float64, n)
	)
	for i, e := range rows {
		x := e.Exposure
		ids[i], ts[i], users[i], experiments[i], variants[i], segments[i], probs[i] =
			e.ID, e.Timestamp, e.UserID, x.Experiment, x.Variant, x.Segment, x.AssignmentProbability
	}
	return s.send(ctx, "INSERT INTO exposures (event_id, ts, user_id, experiment, variant, segment, assignment_probability)",
		ids, ts, users, experiments, variants, segments, probs)
}

// send inserts columns, given in the order of the query's column list.
func (s *Sink) send(ctx context.Context, query string, columns ...any) error {
	b, err := s.conn.PrepareBatch(ctx, query)
	if err != nil {
		return err
	}
	for i, col := range columns {
		if err := appendColumn(b.Column(i), col); err != nil {
			_ = b.Abort()
			return fmt.Errorf("column %d: %w", i, err)
		}
	}
	return b.Send()
}

// appendColumn hands the driver a column. The driver reads a whole column of
// arrays through reflection, row by row, but a row of a plain slice type without:
// array columns go row by row.
func appendColumn(c driver.BatchColumn, col any) error {
	switch rows := col.(type) {
	case [][]string:
		return appendRows(c, rows)
	case [][]int8:
		return appendRows(c, rows)
	case [][]float64:
		return appendRows(c, rows)
	}
	return c.Append(col)
}

func appendRows[T any](c driver.BatchColumn, rows [][]T) error {
	for _, r := range rows {
		if r == nil {
			r = []T{}
		}
		if err := c.AppendRow(r); err != nil {
			return err
		}
	}
	return nil
}
