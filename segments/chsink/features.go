package chsink

import (
	"context"
	"fmt"

	"github.com/liftlab/lift/segments"
)

// RecordFeatures appends new feature values to feature_values (docs/analytics.md): the
// training data of models that learn from what lift knew about a user at a time. It
// implements amqprunner.FeatureLog; like Record it is idempotent (rows collapse on
// feature, user_id, ts, ts_ms) and safe to retry.
func (l *Log) RecordFeatures(ctx context.Context, changes []segments.FeatureChange) error {
	if len(changes) == 0 {
		return nil
	}
	b, err := l.conn.PrepareBatch(ctx, "INSERT INTO feature_values (ts, ts_ms, user_id, feature, value, recorded_at)")
	if err != nil {
		return fmt.Errorf("segments/chsink: record %d feature values: %w", len(changes), err)
	}
	recorded := l.now().UTC()
	for _, c := range changes {
		at := c.At.UTC()
		if err := b.Append(at, uint16(at.Nanosecond()/1e6), c.UserID, c.Feature, string(c.Value), recorded); err != nil {
			_ = b.Abort()
			return fmt.Errorf("segments/chsink: record %s of %s: %w", c.Feature, c.UserID, err)
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("segments/chsink: record %d feature values: %w", len(changes), err)
	}
	return nil
}
