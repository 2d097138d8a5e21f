package pgstore

import (
	"context"
	"time"

	"github.com/liftlab/lift/segments"
)

// SegmentEraser is the segment engine's part of an erasure: every shard forgets the
// users at its next checkpoint; a shard whose checkpoint is older than StaleAfter
// has no running engine, and its checkpoint is edited here instead. It is
// gdpr.Runner's Segments.
type SegmentEraser struct {
	Store       *Store
	Definitions func(context.Context) ([]segments.Definition, string, error)
	StaleAfter  time.Duration
}

// RequestForget asks every shard to forget the users at its next checkpoint.
func (s *SegmentEraser) RequestForget(ctx context.Context, jobID string, userIDs []string) error {
	return s.Store.RequestErasure(ctx, jobID, userIDs)
}

// Forgotten reports whether every shard has forgotten the job's users, editing
// the checkpoints of shards that no engine runs.
func (s *SegmentEraser) Forgotten(ctx context.Context, jobID string, userIDs []string) (bool, error) {
	pending, err := s.Store.ErasurePending(ctx, jobID)
	if err != nil || len(pending) == 0 {
		return err == nil, err
	}
	left := 0
	for _, p := range pending {
		if time.Since(p.SavedAt) < s.StaleAfter {
			left++ // its engine runs and will forget them at its next checkpoint
			continue
		}
		defs, fingerprint, err := s.Definitions(ctx)
		if err != nil {
			return false, err
		}
		ok, err := s.Store.ForgetInCheckpoint(ctx, p.Shard, userIDs, defs, fingerprint)
		if err != nil {
			return false, err
		}
		if !ok {
			left++
		}
	}
	return left == 0, nil
}
