// Package pgstore publishes bandit weights to PostgreSQL, where the decision
// processes pick them up (the table's trigger notifies them), and reads their history.
package pgstore

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/liftlab/lift/bandit"
)

// Store implements bandit.Publisher.
type Store struct {
	pool *pgxpool.Pool
}

// New returns a Store using pool.
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// Publish stores each publication as the next version of its experiment and segment,
// all in one transaction so a snapshot never sees half an update.
func (s *Store) Publish(ctx context.Context, pubs []bandit.Publication) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		for _, p := range pubs {
			_, err := tx.Exec(ctx, `
				INSERT INTO bandit_weights (experiment, segment, version, variants, weights, p_best, posteriors, counts, burn_in)
				SELECT $1, $2, coalesce(max(version), 0) + 1, $3, $4, $5, $6, $7, $8
				FROM bandit_weights WHERE experiment = $1 AND segment = $2`,
				p.Experiment, p.Segment, p.Variants, p.Weights, p.PBest, p.Posteriors, p.Counts, p.BurnIn)
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("pgstore: publish bandit weights: %w", err)
	}
	return nil
}

// Version is one published weights version, for reports.
type Version = bandit.Version

// History returns an experiment's versions since a time, oldest first.
func (s *Store) History(ctx context.Context, experiment string, since time.Time) ([]Version, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT segment, version, variants, weights, p_best, posteriors, counts, burn_in, computed_at
		FROM bandit_weights WHERE experiment = $1 AND computed_at >= $2
		ORDER BY computed_at, segment`, experiment, since)
	if err != nil {
		return nil, fmt.Errorf("pgstore: bandit history of %q: %w", experiment, err)
	}
	vs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Version, error) {
		var v Version
		err := row.Scan(&v.Segment, &v.Version, &v.Variants, &v.Weights, &v.PBest, &v.Posteriors, &v.Counts, &v.BurnIn, &v.ComputedAt)
		return v, err
	})
	if err != nil {
		return nil, fmt.Errorf("pgstore: bandit history of %q: %w", experiment, err)
	}
	return vs, nil
}
