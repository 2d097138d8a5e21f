package chsink

import (
	"context"
	"fmt"
	"time"

	"github.com/liftlab/lift/segments"
)

// Events reads the stored events (ClickHouse `events`, deduplicated with FINAL) the
// user consented to personalisation for, of the given types with a timestamp at or after since and received before until, in
// the order they were received, for the segment engine's rebuilds. ClickHouse keeps
// whole seconds: pass an until of whole seconds, so that "received before until" means
// the same for stored and live events. It stops at the first error fn returns.
func (l *Log) Events(ctx context.Context, types []string, since, until time.Time, fn func(segments.Event) error) error {
	if len(types) == 0 {
		return nil
	}
	rows, err := l.conn.Query(ctx, `SELECT user_id, type, ts, received_at, value, properties FROM events FINAL
		WHERE type IN (SELECT arrayJoin(?)) AND ts >= toDateTime(?) AND received_at < toDateTime(?) AND personalization = 1
		ORDER BY received_at, ts, event_id`, types, since.Unix(), until.Unix())
	if err != nil {
		return fmt.Errorf("segments/chsink: read history: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var ev segments.Event
		var props string
		if err := rows.Scan(&ev.UserID, &ev.Type, &ev.Time, &ev.ReceivedAt, &ev.Value, &props); err != nil {
			return fmt.Errorf("segments/chsink: read history: %w", err)
		}
		if props != "" && props != "{}" {
			ev.Properties = []byte(props)
		}
		if err := fn(ev); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("segments/chsink: read history: %w", err)
	}
	return nil
}
