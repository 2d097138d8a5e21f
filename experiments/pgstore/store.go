// Package pgstore keeps lift's configuration documents in PostgreSQL and tells running
// processes when they change.
package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/liftlab/lift/experiments"
	"github.com/liftlab/lift/internal/derrors"
)

// Store implements experiments.Store on a pgx pool.
type Store struct {
	pool *pgxpool.Pool
}

// New returns a Store using pool.
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// table describes where a kind of document lives. Columns other than key and doc are
// derived from the document in SQL, so they cannot disagree with it.
type table struct {
	name string
	// extra lists derived columns and the expressions ($2 is the document) that fill them.
	extraCols, extraVals string
}

var tables = map[experiments.Kind]table{
	experiments.KindExperiment:  {name: "experiments", extraCols: ", status", extraVals: ", $2::jsonb->>'status'"},
	experiments.KindFlag:        {name: "flags"},
	experiments.KindSegment:     {name: "segments", extraCols: ", kind", extraVals: ", $2::jsonb->>'kind'"},
	experiments.KindSavedGroup:  {name: "saved_groups"},
	experiments.KindFeature:     {name: "features"},
	experiments.KindRecommender: {name: "recommenders"},
}

func tableFor(kind experiments.Kind) (table, error) {
	t, ok := tables[kind]
	if !ok {
		return table{}, fmt.Errorf("pgstore: unknown kind %q", kind)
	}
	return t, nil
}

// LoadConfig reads every document in one repeatable-read transaction, so the snapshot
// is consistent across tables.
func (s *Store) LoadConfig(ctx context.Context) (*experiments.Config, error) {
	cfg := &experiments.Config{}
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		if err := loadAll(ctx, tx, "experiments", &cfg.Experiments); err != nil {
			return err
		}
		if err := loadAll(ctx, tx, "flags", &cfg.Flags); err != nil {
			return err
		}
		if err := loadAll(ctx, tx, "segments", &cfg.Segments); err != nil {
			return err
		}
		if err := loadAll(ctx, tx, "saved_groups", &cfg.SavedGroups); err != nil {
			return err
		}
		if err := loadAll(ctx, tx, "features", &cfg.Features); err != nil {
			return err
		}
		if err := loadAll(ctx, tx, "recommenders", &cfg.Recommenders); err != nil {
			return err
		}
		return loadBanditWeights(ctx, tx, cfg)
	})
	if err != nil {
		return nil, fmt.Errorf("pgstore: load config: %w", err)
	}
	return cfg, nil
}

func loadAll[T any](ctx context.Context, tx pgx.Tx, tableName string, dst *[]T) error {
	rows, err := tx.Query(ctx, "SELECT doc FROM "+tableName+" ORDER BY key")
	if err != nil {
		return err
	}
	docs, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
	if err != nil {
		return err
	}
	*dst = make([]T, len(docs))
	for i, d := range docs {
		if err := json.Unmarshal(d, &(*dst)[i]); err != nil {
			return fmt.Errorf("%s row %d: %w", tableName, i, err)
		}
	}
	return nil
}

// List returns the documents of a kind ordered by key.
func (s *Store) List(ctx context.Context, kind experiments.Kind) ([]json.RawMessage, error) {
	t, err := tableFor(kind)
	if err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, "SELECT doc FROM "+t.name+" ORDER BY key")
	if err != nil {
		return nil, fmt.Errorf("pgstore: list %s: %w", kind, err)
	}
	docs, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
	if err != nil {
		return nil, fmt.Errorf("pgstore: list %s: %w", kind, err)
	}
	out := make([]json.RawMessage, len(docs))
	for i, d := range docs {
		out[i] = d
	}
	return out, nil
}

// Get returns derrors.ErrNotFound if there is no such document.
func (s *Store) Get(ctx context.Context, kind experiments.Kind, key string) (json.RawMessage, error) {
	t, err := tableFor(kind)
	if err != nil {
		return nil, err
	}
	var doc []byte
	err = s.pool.QueryRow(ctx, "SELECT doc FROM "+t.name+" WHERE key = $1", key).Scan(&doc)
	if err != nil {
		return nil, fmt.Errorf("pgstore: get %s %q: %w", kind, key, translate(err))
	}
	return doc, nil
}

// Create returns derrors.ErrConflict if the key exists.
func (s *Store) Create(ctx context.Context, kind experiments.Kind, key string, doc json.RawMessage, actor string) error {
	t, err := tableFor(kind)
	if err != nil {
		return err
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		q := "INSERT INTO " + t.name + " (key, doc" + t.extraCols + ") VALUES ($1, $2" + t.extraVals + ")"
		if _, err := tx.Exec(ctx, q, key, []byte(doc)); err != nil {
			return err
		}
		return audit(ctx, tx, actor, "create", kind, key, nil, doc)
	})
	if err != nil {
		return fmt.Errorf("pgstore: create %s %q: %w", kind, key, translate(err))
	}
	return nil
}

// Update locks the row, lets change compute the new document, and writes it with an
// audit entry. It returns derrors.ErrNotFound if the key does not exist.
func (s *Store) Update(ctx context.Context, kind experiments.Kind, key, action, actor string,
	change func(before json.RawMessage) (json.RawMessage, error)) (json.RawMessage, error) {
	return s.UpdateAudited(ctx, kind, key, action, actor, change, nil)
}

// UpdateAudited is Update for a change whose documents the audit log must not keep
// as they are: the audit entry records audited(before) and audited(after) instead
// (an erasure removing a user's id from a saved group records a keyed digest of the
// id, not the id). A nil audited records them as they are.
func (s *Store) UpdateAudited(ctx context.Context, kind experiments.Kind, key, action, actor string,
	change func(before json.RawMessage) (json.RawMessage, error), audited func(doc json.RawMessage) json.RawMessage) (json.RawMessage, error) {
	if audited == nil {
		audited = func(doc json.RawMessage) json.RawMessage { return doc }
	}
	t, err := tableFor(kind)
	if err != nil {
		return nil, err
	}
	var after json.RawMessage
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var before []byte
		if err := tx.QueryRow(ctx, "SELECT doc FROM "+t.name+" WHERE key = $1 FOR UPDATE", key).Scan(&before); err != nil {
			return err
		}
		var err error
		if after, err = change(before); err != nil {
			return err
		}
		set := "doc = $2, version = version + 1, updated_at = now()"
		if t.extraCols != "" {
			set += "," + t.extraCols[1:] + " = " + t.extraVals[2:]
		}
		if _, err := tx.Exec(ctx, "UPDATE "+t.name+" SET "+set+" WHERE key = $1", key, []byte(after)); err != nil {
			return err
		}
		return audit(ctx, tx, actor, action, kind, key, audited(before), audited(after))
	})
	if err != nil {
		return nil, fmt.Errorf("pgstore: %s %s %q: %w", action, kind, key, translate(err))
	}
	return after, nil
}

// Delete returns derrors.ErrNotFound if the key does not exist.
func (s *Store) Delete(ctx context.Context, kind experiments.Kind, key, actor string) error {
	t, err := tableFor(kind)
	if err != nil {
		return err
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var before []byte
		if err := tx.QueryRow(ctx, "DELETE FROM "+t.name+" WHERE key = $1 RETURNING doc", key).Scan(&before); err != nil {
			return err
		}
		return audit(ctx, tx, actor, "delete", kind, key, before, nil)
	})
	if err != nil {
		return fmt.Errorf("pgstore: delete %s %q: %w", kind, key, translate(err))
	}
	return nil
}

func audit(ctx context.Context, tx pgx.Tx, actor, action string, kind experiments.Kind, key string, before, after []byte) error {
	_, err := tx.Exec(ctx,
		"INSERT INTO audit_log (actor, action, entity, entity_key, before, after) VALUES ($1, $2, $3, $4, $5, $6)",
		actor, action, string(kind), key, before, after)
	if err != nil || kind != experiments.KindSegment || after == nil {
		return err
	}
	// Keep every segment definition: the published one and the draft, each under its
	// version (a version's definition never changes, so the first write wins).
	_, err = tx.Exec(ctx, `INSERT INTO segment_versions (key, version, doc, created_by)
		SELECT $1, (d->>'version')::integer, d - 'draft' - 'status', $3
		FROM (VALUES ($2::jsonb), ($2::jsonb->'draft')) AS v(d)
		WHERE jsonb_typeof(d) = 'object' AND (d->>'version')::integer > 0
		ON CONFLICT (key, version) DO NOTHING`, key, after, actor)
	return err
}

// SegmentVersions lists the definitions a segment key has had, oldest first.
func (s *Store) SegmentVersions(ctx context.Context, key string) ([]experiments.SegmentVersion, error) {
	rows, err := s.pool.Query(ctx, `SELECT version, doc, created_at, created_by FROM segment_versions
		WHERE key = $1 ORDER BY version`, key)
	if err != nil {
		return nil, fmt.Errorf("pgstore: versions of segment %q: %w", key, err)
	}
	vs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (experiments.SegmentVersion, error) {
		var v experiments.SegmentVersion
		var doc []byte
		err := row.Scan(&v.Version, &doc, &v.CreatedAt, &v.CreatedBy)
		v.Segment = doc
		return v, err
	})
	if err != nil {
		return nil, fmt.Errorf("pgstore: versions of segment %q: %w", key, err)
	}
	return vs, nil
}

// Audit lists audit entries, newest first (at most q.Limit, default 100).
func (s *Store) Audit(ctx context.Context, q experiments.AuditQuery) ([]experiments.AuditEntry, error) {
	limit := q.Limit
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	rows, err := s.pool.Query(ctx, `
		SELECT id, at, actor, action, entity, entity_key, before, after FROM audit_log
		WHERE ($1 = '' OR entity = $1) AND ($2 = '' OR entity_key = $2)
		ORDER BY id DESC LIMIT $3`, string(q.Entity), q.Key, limit)
	if err != nil {
		return nil, fmt.Errorf("pgstore: audit: %w", err)
	}
	entries, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (experiments.AuditEntry, error) {
		var e experiments.AuditEntry
		var before, after []byte
		err := row.Scan(&e.ID, &e.At, &e.Actor, &e.Action, &e.Entity, &e.Key, &before, &after)
		e.Before, e.After = before, after
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("pgstore: audit: %w", err)
	}
	return entries, nil
}

// translate maps driver errors to the domain's sentinels.
func translate(err error) error {
	var pgErr *pgconn.PgError
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return derrors.ErrNotFound
	case errors.As(err, &pgErr) && pgErr.Code == "23505":
		return derrors.ErrConflict
	}
	return err
}

// loadBanditWeights reads the latest weights of every bandit experiment and segment.
func loadBanditWeights(ctx context.Context, tx pgx.Tx, cfg *experiments.Config) error {
	rows, err := tx.Query(ctx, `
		SELECT DISTINCT ON (experiment, segment) experiment, segment, version, variants, weights, computed_at
		FROM bandit_weights ORDER BY experiment, segment, version DESC`)
	if err != nil {
		return err
	}
	cfg.BanditWeights, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (experiments.BanditWeights, error) {
		var w experiments.BanditWeights
		err := row.Scan(&w.Experiment, &w.Segment, &w.Version, &w.Variants, &w.Weights, &w.ComputedAt)
		return w, err
	})
	return err
}
