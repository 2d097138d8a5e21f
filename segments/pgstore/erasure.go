package pgstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/liftlab/lift/segments"
)

// Erasure (docs/privacy.md): what an erasure job needs from the segment engine's
// tables. Memberships are ended before they are deleted, because processes following
// the table by seq never see a deleted row; engine state is forgotten by each shard
// at its next checkpoint (amqprunner.Erasures), or here when the shard's engine does
// not run.

// RequestErasure asks every shard that has a checkpoint to forget the users.
func (s *Store) RequestErasure(ctx context.Context, jobID string, userIDs []string) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO segment_erasures (job_id, shard, user_id)
		SELECT $1, c.shard, u FROM segment_checkpoints c, unnest($2::text[]) AS u
		ON CONFLICT DO NOTHING`, jobID, userIDs)
	if err != nil {
		return fmt.Errorf("pgstore: request erasure: %w", err)
	}
	return nil
}

// PendingErasures returns the users shard has still to forget.
func (s *Store) PendingErasures(ctx context.Context, shard int) ([]string, error) {
	rows, err := s.pool.Query(ctx, "SELECT DISTINCT user_id FROM segment_erasures WHERE shard = $1", shard)
	if err != nil {
		return nil, fmt.Errorf("pgstore: pending erasures of shard %d: %w", shard, err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("pgstore: pending erasures of shard %d: %w", shard, err)
	}
	return ids, nil
}

// Forgotten records that shard saved a checkpoint without the users.
func (s *Store) Forgotten(ctx context.Context, shard int, userIDs []string) error {
	if _, err := s.pool.Exec(ctx, "DELETE FROM segment_erasures WHERE shard = $1 AND user_id = ANY($2)", shard, userIDs); err != nil {
		return fmt.Errorf("pgstore: erasures done on shard %d: %w", shard, err)
	}
	return nil
}

// PendingShard is a shard that has not yet forgotten a job's users, with the time of
// its last checkpoint (an old one means its engine is not running).
type PendingShard struct {
	Shard   int
	SavedAt time.Time
}

// ErasurePending returns the shards still to forget the job's users.
func (s *Store) ErasurePending(ctx context.Context, jobID string) ([]PendingShard, error) {
	rows, err := s.pool.Query(ctx, `SELECT DISTINCT e.shard, coalesce(c.saved_at, 'epoch') FROM segment_erasures e
		LEFT JOIN segment_checkpoints c USING (shard) WHERE e.job_id = $1 ORDER BY 1`, jobID)
	if err != nil {
		return nil, fmt.Errorf("pgstore: pending erasure %s: %w", jobID, err)
	}
	shards, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (PendingShard, error) {
		var p PendingShard
		err := row.Scan(&p.Shard, &p.SavedAt)
		return p, err
	})
	if err != nil {
		return nil, fmt.Errorf("pgstore: pending erasure %s: %w", jobID, err)
	}
	return shards, nil
}

// ForgetInCheckpoint removes the users from the checkpoint of a shard whose engine is
// not running: it restores the checkpoint into an engine of the current definitions,
// forgets them, and saves the result, unless an engine saved a checkpoint meanwhile
// (then ok is false and that engine handles the erasure). A checkpoint of other
// definitions, or taken while segments were being rebuilt, would lose what the
// engine needs to tell (segments to rebuild, memberships to reconcile) if rewritten
// with the current ones, so it is deleted instead: the shard then rebuilds from
// ClickHouse, where the users' events are erased too.
func (s *Store) ForgetInCheckpoint(ctx context.Context, shard int, userIDs []string, defs []segments.Definition, fingerprint string) (ok bool, err error) {
	var saved string
	var state []byte
	var savedAt time.Time
	err = s.pool.QueryRow(ctx, "SELECT definitions, state, saved_at FROM segment_checkpoints WHERE shard = $1", shard).Scan(&saved, &state, &savedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return true, s.Forgotten(ctx, shard, userIDs)
	}
	if err != nil {
		return false, fmt.Errorf("pgstore: checkpoint of shard %d: %w", shard, err)
	}
	var tag interface{ RowsAffected() int64 }
	if saved != fingerprint { // also when it says "rebuilding:"
		tag, err = s.pool.Exec(ctx, "DELETE FROM segment_checkpoints WHERE shard = $1 AND saved_at = $2", shard, savedAt)
	} else {
		engine, err := segments.NewEngine(defs, segments.Options{OnChange: func(segments.Change) {}})
		if err != nil {
			return false, err
		}
		if _, err := engine.Restore(bytes.NewReader(state)); err != nil {
			return false, fmt.Errorf("pgstore: restore checkpoint of shard %d: %w", shard, err)
		}
		for _, id := range userIDs {
			engine.Forget(id)
		}
		var buf bytes.Buffer
		if err := engine.Snapshot(&buf); err != nil {
			return false, err
		}
		tag, err = s.pool.Exec(ctx, "UPDATE segment_checkpoints SET state = $3, saved_at = now() WHERE shard = $1 AND saved_at = $2",
			shard, savedAt, buf.Bytes())
		if err != nil {
			return false, fmt.Errorf("pgstore: save checkpoint of shard %d: %w", shard, err)
		}
	}
	if err != nil {
		return false, fmt.Errorf("pgstore: erase from checkpoint of shard %d: %w", shard, err)
	}
	if tag.RowsAffected() == 0 {
		return false, nil // an engine saved a checkpoint meanwhile: it is running
	}
	return true, s.Forgotten(ctx, shard, userIDs)
}

// EndMemberships marks the users' current memberships as ended and clears their
// feature values; followers drop them.
func (s *Store) EndMemberships(ctx context.Context, userIDs []string) (int, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE segment_memberships SET member = false, exited_at = now(),
		seq = nextval('segment_membership_seq') WHERE user_id = ANY($1) AND member`, userIDs)
	if err != nil {
		return 0, fmt.Errorf("pgstore: end memberships: %w", err)
	}
	if _, err := s.pool.Exec(ctx, `UPDATE user_features SET value = NULL, at = now(), seq = nextval('user_feature_seq')
		WHERE user_id = ANY($1) AND value IS NOT NULL`, userIDs); err != nil {
		return 0, fmt.Errorf("pgstore: clear feature values: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

// DeleteMemberships deletes the users' membership rows and feature values.
func (s *Store) DeleteMemberships(ctx context.Context, userIDs []string) (int, error) {
	tag, err := s.pool.Exec(ctx, "DELETE FROM segment_memberships WHERE user_id = ANY($1)", userIDs)
	if err != nil {
		return 0, fmt.Errorf("pgstore: delete memberships: %w", err)
	}
	if _, err := s.pool.Exec(ctx, "DELETE FROM user_features WHERE user_id = ANY($1)", userIDs); err != nil {
		return 0, fmt.Errorf("pgstore: delete feature values: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

// ForgetDeliveries deletes the users' segment changes from the webhook outbox: those
// still to deliver and the dead letters, and returns how many of each. A delivery a
// dispatcher holds at that moment may still be sent; its result then finds no row.
func (s *Store) ForgetDeliveries(ctx context.Context, userIDs []string) (pending, dead int, err error) {
	err = s.pool.QueryRow(ctx, `WITH d AS (DELETE FROM segment_webhook_outbox WHERE user_id = ANY($1) RETURNING dead_at)
		SELECT count(*) FILTER (WHERE dead_at IS NULL), count(*) FILTER (WHERE dead_at IS NOT NULL) FROM d`, userIDs).Scan(&pending, &dead)
	if err != nil {
		return 0, 0, fmt.Errorf("pgstore: forget webhook deliveries: %w", err)
	}
	return pending, dead, nil
}

// Memberships returns the users' membership rows, for an export.
func (s *Store) Memberships(ctx context.Context, userIDs []string) ([]map[string]any, error) {
	rows, err := s.pool.Query(ctx, `SELECT segment, user_id, member, entered_at, exited_at, expires_at
		FROM segment_memberships WHERE user_id = ANY($1) ORDER BY segment, user_id`, userIDs)
	if err != nil {
		return nil, fmt.Errorf("pgstore: memberships: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToMap)
	if err != nil {
		return nil, fmt.Errorf("pgstore: memberships: %w", err)
	}
	return out, nil
}
