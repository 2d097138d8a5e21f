// Package pgstore keeps custom event types (ingest.TypeStore) in PostgreSQL.
package pgstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/liftlab/lift/ingest"
	"github.com/liftlab/lift/internal/derrors"
)

// Store implements ingest.TypeStore on a pgx pool.
type Store struct {
	pool *pgxpool.Pool
}

// New returns a Store using pool.
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

const columns = "name, version, schema, created_at, created_by"

// LatestTypes returns the newest version of every type, by name.
func (s *Store) LatestTypes(ctx context.Context) ([]ingest.EventType, error) {
	return s.query(ctx, "SELECT DISTINCT ON (name) "+columns+" FROM event_types ORDER BY name, version DESC")
}

// TypeVersions returns every version of one type, oldest first (none if unknown).
func (s *Store) TypeVersions(ctx context.Context, name string) ([]ingest.EventType, error) {
	return s.query(ctx, "SELECT "+columns+" FROM event_types WHERE name = $1 ORDER BY version", name)
}

// InsertType saves one version; derrors.ErrConflict if it exists.
func (s *Store) InsertType(ctx context.Context, t ingest.EventType) error {
	_, err := s.pool.Exec(ctx, "INSERT INTO event_types ("+columns+") VALUES ($1, $2, $3, $4, $5)",
		t.Name, t.Version, string(t.Schema), t.CreatedAt, t.CreatedBy)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		return fmt.Errorf("pgstore: event type %q version %d: %w", t.Name, t.Version, derrors.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("pgstore: insert event type %q: %w", t.Name, err)
	}
	return nil
}

func (s *Store) query(ctx context.Context, sql string, args ...any) ([]ingest.EventType, error) {
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("pgstore: event types: %w", err)
	}
	types, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ingest.EventType, error) {
		var t ingest.EventType
		var schema string
		err := r.Scan(&t.Name, &t.Version, &schema, &t.CreatedAt, &t.CreatedBy)
		t.Schema = []byte(schema)
		return t, err
	})
	if err != nil {
		return nil, fmt.Errorf("pgstore: event types: %w", err)
	}
	return types, nil
}
