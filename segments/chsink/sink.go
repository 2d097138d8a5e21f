// Package chsink records behavioural segment membership changes in ClickHouse
// (table segment_changes, docs/analytics.md) for analysts, through the native
// protocol's batch API with an explicit column list (the only insert path that works
// on ClickHouse 18.16, see docs/storage.md).
package chsink

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/liftlab/lift/internal/chconn"
	"github.com/liftlab/lift/segments"
)

// Log appends membership changes to segment_changes. It implements
// amqprunner.ChangeLog.
type Log struct {
	conn driver.Conn
	now  func() time.Time
}

// Open connects lazily to the database at addr (host:port, native protocol); it fails
// only on invalid options, so the segment engine can start while ClickHouse is down.
func Open(addr, database string) (*Log, error) {
	conn, err := chconn.Open(addr, database, 30*time.Second)
	if err != nil {
		return nil, fmt.Errorf("segments/chsink: %w", err)
	}
	return &Log{conn: conn, now: time.Now}, nil
}

// Close closes the connections.
func (l *Log) Close() error { return l.conn.Close() }

// Ping checks that ClickHouse answers.
func (l *Log) Ping(ctx context.Context) error { return l.conn.Ping(ctx) }

// epoch stands for "no expiry" in expires_at (DateTime 0).
var epoch = time.Unix(0, 0).UTC()

// Record inserts the changes in one batch. Recording the same change again (the
// engine re-emits the changes since its last checkpoint after a restart) is harmless:
// the rows collapse on (segment, user_id, kind, ts) in the ReplacingMergeTree. On an
// error nothing or everything may have been inserted; retrying the batch is safe.
func (l *Log) Record(ctx context.Context, changes []segments.Change) error {
	if len(changes) == 0 {
		return nil
	}
	b, err := l.conn.PrepareBatch(ctx, "INSERT INTO segment_changes (ts, user_id, segment, kind, expires_at, recorded_at)")
	if err != nil {
		return fmt.Errorf("segments/chsink: record %d changes: %w", len(changes), err)
	}
	recorded := l.now().UTC()
	for _, c := range changes {
		expires := epoch
		if !c.Expiry.IsZero() {
			expires = c.Expiry.UTC()
		}
		if err := b.Append(c.At.UTC(), c.UserID, c.Segment, c.Kind.String(), expires, recorded); err != nil {
			_ = b.Abort()
			return fmt.Errorf("segments/chsink: record change of %s in %s: %w", c.UserID, c.Segment, err)
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("segments/chsink: record %d changes: %w", len(changes), err)
	}
	return nil
}
