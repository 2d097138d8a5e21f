// Package pgstore keeps recommenders' trained models in PostgreSQL, versioned, and
// the requests to train them; decision processes follow new models (the table's
// trigger notifies them). Models are a few MB for ten thousand items, so a bytea
// column in the database every decision process already reads is the simplest store
// that versions them transactionally; ClickHouse, where the training data lives, is
// not on the decision path.
package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/liftlab/lift/experiments/recommend"
	"github.com/liftlab/lift/internal/derrors"
	"github.com/liftlab/lift/internal/pglisten"
)

// KeepVersions is how many models of each recommender are kept.
const KeepVersions = 5

// Store implements recommend.Store and recommend.ModelStore.
type Store struct {
	pool *pgxpool.Pool
}

// New returns a Store using pool.
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// Save implements recommend.Store: the model becomes the recommender's next version,
// and versions older than the last KeepVersions are deleted.
func (s *Store) Save(ctx context.Context, recommender string, m *recommend.Model) (int64, error) {
	data, err := m.MarshalBinary()
	if err != nil {
		return 0, err
	}
	stats, err := json.Marshal(m.Stats)
	if err != nil {
		return 0, err
	}
	var version int64
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// One writer per recommender at a time (the trainer leads alone, but a
		// version number must never be taken twice).
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtext('lift.recommender:' || $1))", recommender); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `INSERT INTO recommender_models (recommender, version, trained_at, stats, model)
			SELECT $1, coalesce(max(version), 0) + 1, $2, $3, $4 FROM recommender_models WHERE recommender = $1
			RETURNING version`, recommender, m.TrainedAt, stats, data).Scan(&version); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "DELETE FROM recommender_models WHERE recommender = $1 AND version <= $2", recommender, version-KeepVersions)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("recommend/pgstore: save model of %q: %w", recommender, err)
	}
	return version, nil
}

// LastTrained implements recommend.Store.
func (s *Store) LastTrained(ctx context.Context) (map[string]time.Time, error) {
	rows, err := s.pool.Query(ctx, "SELECT recommender, max(trained_at) FROM recommender_models GROUP BY recommender")
	if err != nil {
		return nil, fmt.Errorf("recommend/pgstore: last trained: %w", err)
	}
	out := map[string]time.Time{}
	var key string
	var at time.Time
	_, err = pgx.ForEachRow(rows, []any{&key, &at}, func() error { out[key] = at; return nil })
	if err != nil {
		return nil, fmt.Errorf("recommend/pgstore: last trained: %w", err)
	}
	return out, nil
}

// RequestTraining records that a recommender should be trained as soon as possible
// (POST /api/v1/recommenders/{key}/train) and returns when it was asked.
func (s *Store) RequestTraining(ctx context.Context, recommender, actor string) (time.Time, error) {
	var at time.Time
	err := s.pool.QueryRow(ctx, `INSERT INTO recommender_train_requests (recommender, requested_by) VALUES ($1, $2)
		ON CONFLICT (recommender) DO UPDATE SET requested_at = now(), requested_by = $2
		RETURNING requested_at`, recommender, actor).Scan(&at)
	if err != nil {
		return time.Time{}, fmt.Errorf("recommend/pgstore: request training of %q: %w", recommender, err)
	}
	return at, nil
}

// TrainRequests implements recommend.Store.
func (s *Store) TrainRequests(ctx context.Context) (map[string]time.Time, error) {
	rows, err := s.pool.Query(ctx, "SELECT recommender, requested_at FROM recommender_train_requests")
	if err != nil {
		return nil, fmt.Errorf("recommend/pgstore: train requests: %w", err)
	}
	out := map[string]time.Time{}
	var key string
	var at time.Time
	_, err = pgx.ForEachRow(rows, []any{&key, &at}, func() error { out[key] = at; return nil })
	if err != nil {
		return nil, fmt.Errorf("recommend/pgstore: train requests: %w", err)
	}
	return out, nil
}

// DoneRequest implements recommend.Store: a request made after asOf (during the
// training) stays, so that training runs again.
func (s *Store) DoneRequest(ctx context.Context, recommender string, asOf time.Time) error {
	_, err := s.pool.Exec(ctx, "DELETE FROM recommender_train_requests WHERE recommender = $1 AND requested_at <= $2", recommender, asOf)
	if err != nil {
		return fmt.Errorf("recommend/pgstore: training of %q done: %w", recommender, err)
	}
	return nil
}

// Latest implements recommend.ModelStore.
func (s *Store) Latest(ctx context.Context) (map[string]int64, error) {
	rows, err := s.pool.Query(ctx, "SELECT recommender, max(version) FROM recommender_models GROUP BY recommender")
	if err != nil {
		return nil, fmt.Errorf("recommend/pgstore: latest models: %w", err)
	}
	out := map[string]int64{}
	var key string
	var v int64
	_, err = pgx.ForEachRow(rows, []any{&key, &v}, func() error { out[key] = v; return nil })
	if err != nil {
		return nil, fmt.Errorf("recommend/pgstore: latest models: %w", err)
	}
	return out, nil
}

// Load implements recommend.ModelStore; it returns derrors.ErrNotFound for a
// version that is not stored.
func (s *Store) Load(ctx context.Context, recommender string, version int64) (*recommend.Model, error) {
	var data, stats []byte
	err := s.pool.QueryRow(ctx, "SELECT model, stats FROM recommender_models WHERE recommender = $1 AND version = $2",
		recommender, version).Scan(&data, &stats)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("recommend/pgstore: model %q version %d: %w", recommender, version, derrors.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("recommend/pgstore: model %q version %d: %w", recommender, version, err)
	}
	m, err := recommend.UnmarshalModel(data)
	if err != nil {
		return nil, fmt.Errorf("recommend/pgstore: model %q version %d: %w", recommender, version, err)
	}
	m.Version = version
	if err := json.Unmarshal(stats, &m.Stats); err != nil {
		return nil, fmt.Errorf("recommend/pgstore: model %q version %d: stats: %w", recommender, version, err)
	}
	return m, nil
}

// Versions lists a recommender's stored models, newest first, and when training was
// asked for if it still is (zero if not).
func (s *Store) Versions(ctx context.Context, recommender string) ([]recommend.ModelInfo, time.Time, error) {
	rows, err := s.pool.Query(ctx, `SELECT version, trained_at, octet_length(model), stats FROM recommender_models
		WHERE recommender = $1 ORDER BY version DESC`, recommender)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("recommend/pgstore: models of %q: %w", recommender, err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (recommend.ModelInfo, error) {
		var mi recommend.ModelInfo
		var stats []byte
		if err := row.Scan(&mi.Version, &mi.TrainedAt, &mi.Bytes, &stats); err != nil {
			return mi, err
		}
		return mi, json.Unmarshal(stats, &mi.Stats)
	})
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("recommend/pgstore: models of %q: %w", recommender, err)
	}
	var asked time.Time
	err = s.pool.QueryRow(ctx, "SELECT requested_at FROM recommender_train_requests WHERE recommender = $1", recommender).Scan(&asked)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return nil, time.Time{}, fmt.Errorf("recommend/pgstore: models of %q: %w", recommender, err)
	}
	return out, asked, nil
}

// Follow keeps models up to date: it reloads them now, whenever a model is saved
// (NOTIFY lift_models) and every interval, until ctx ends.
func Follow(ctx context.Context, connString string, models *recommend.Models, interval time.Duration, log *slog.Logger) {
	wake := make(chan struct{}, 1)
	go pglisten.Wake(ctx, connString, "lift_models", wake, log)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		if err := models.Reload(ctx); err != nil && ctx.Err() == nil {
			log.Warn("loading recommender models", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-wake:
		case <-tick.C:
		}
	}
}
