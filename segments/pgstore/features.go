package pgstore

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/liftlab/lift/segments"
)

// featuresLock serialises the transactions that write feature values, for the same
// reason as membershipsLock: followers read by seq.
const featuresLock int64 = 0x6c69667466656174 // "liftfeat"

// ApplyFeatures records new feature values (nil: back to the default, stored as
// NULL). Of several values of one user's feature in the batch only the last counts. A
// value the table already shows is not written again, so a restarted engine that
// publishes the values since its checkpoint again moves no follower.
func (s *Store) ApplyFeatures(ctx context.Context, changes []segments.FeatureChange) error {
	if len(changes) == 0 {
		return nil
	}
	type key struct{ feature, user string }
	last := make(map[key]int, len(changes))
	for i, c := range changes {
		last[key{c.Feature, c.UserID}] = i
	}
	feats, users := make([]string, 0, len(last)), make([]string, 0, len(last))
	values, at := make([]*string, 0, len(last)), make([]time.Time, 0, len(last))
	for i, c := range changes {
		if last[key{c.Feature, c.UserID}] != i {
			continue
		}
		var v *string
		if c.Value != nil {
			s := string(c.Value)
			v = &s
		}
		feats, users, values, at = append(feats, c.Feature), append(users, c.UserID), append(values, v), append(at, c.At)
	}
	b := &pgx.Batch{}
	b.Queue("SELECT pg_advisory_xact_lock($1)", featuresLock)
	b.Queue(`INSERT INTO user_features AS t (feature, user_id, value, at)
		SELECT * FROM unnest($1::text[], $2::text[], $3::jsonb[], $4::timestamptz[])
		ON CONFLICT (feature, user_id) DO UPDATE SET value = EXCLUDED.value, at = EXCLUDED.at,
			seq = nextval('user_feature_seq')
		WHERE t.value IS DISTINCT FROM EXCLUDED.value`, feats, users, values, at)
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error { return tx.SendBatch(ctx, b).Close() })
	if err != nil {
		return fmt.Errorf("pgstore: apply %d feature values: %w", len(feats), err)
	}
	return nil
}

// FeatureUsers returns the users with a stored value (other than the default) of the
// given features, as feature changes whose Value is what is stored, to reconcile an
// engine rebuilt or redefined with what decisions see.
func (s *Store) FeatureUsers(ctx context.Context, features []string) ([]segments.FeatureChange, error) {
	rows, err := s.pool.Query(ctx, `SELECT feature, user_id, value, at FROM user_features
		WHERE value IS NOT NULL AND feature = ANY($1)`, features)
	if err != nil {
		return nil, fmt.Errorf("pgstore: feature values of %v: %w", features, err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (segments.FeatureChange, error) {
		var c segments.FeatureChange
		var v []byte
		err := row.Scan(&c.Feature, &c.UserID, &v, &c.At)
		c.Value = v
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("pgstore: feature values of %v: %w", features, err)
	}
	return out, nil
}

// FeatureValue is one row of the feature table.
type FeatureValue struct {
	Feature, UserID string
	Value           json.RawMessage // nil: the default
	Seq             int64
}

// FeaturesSince returns the feature values changed after seq, in seq order, at most
// limit.
func (s *Store) FeaturesSince(ctx context.Context, seq int64, limit int) ([]FeatureValue, error) {
	rows, err := s.pool.Query(ctx, `SELECT feature, user_id, value, seq FROM user_features
		WHERE seq > $1 ORDER BY seq LIMIT $2`, seq, limit)
	if err != nil {
		return nil, fmt.Errorf("pgstore: feature values since %d: %w", seq, err)
	}
	vs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (FeatureValue, error) {
		var v FeatureValue
		var raw []byte
		err := row.Scan(&v.Feature, &v.UserID, &raw, &v.Seq)
		if raw != nil {
			v.Value = raw
		}
		return v, err
	})
	if err != nil {
		return nil, fmt.Errorf("pgstore: feature values since %d: %w", seq, err)
	}
	return vs, nil
}

// FeatureSet receives feature values.
type FeatureSet interface {
	SetFeature(feature, userID string, value json.RawMessage)
}

// FollowFeatures keeps set in step with the feature table, as Follow does for
// memberships: every row first, then the rows changed since the last one seen
// whenever a NOTIFY arrives and every interval, until ctx ends.
func (s *Store) FollowFeatures(ctx context.Context, connString string, set FeatureSet, interval time.Duration, log *slog.Logger) {
	follow(ctx, connString, "lift_features", "following feature values", interval, log, func(ctx context.Context, last int64) (int, int64, error) {
		vs, err := s.FeaturesSince(ctx, last, followPage)
		if err != nil {
			return 0, last, err
		}
		for _, v := range vs {
			set.SetFeature(v.Feature, v.UserID, v.Value)
			last = v.Seq
		}
		return len(vs), last, nil
	})
}
