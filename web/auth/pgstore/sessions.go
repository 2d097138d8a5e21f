package pgstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/liftlab/lift/internal/derrors"
	"github.com/liftlab/lift/web/auth"
)

// CreateSession stores a session and, while at it, removes expired ones, so the table
// does not grow without a separate sweeper.
func (s *Store) CreateSession(ctx context.Context, hash auth.KeyHash, userID int64, expires time.Time) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "DELETE FROM sessions WHERE expires_at < now()"); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "INSERT INTO sessions (token_hash, user_id, expires_at) VALUES ($1, $2, $3)",
			hash[:], userID, expires)
		return err
	})
	if err != nil {
		return fmt.Errorf("pgstore: create session: %w", err)
	}
	return nil
}

// SessionUser returns derrors.ErrNotFound for an unknown or expired session, or one whose
// user has been disabled.
func (s *Store) SessionUser(ctx context.Context, hash auth.KeyHash) (auth.User, error) {
	var u auth.User
	err := s.pool.QueryRow(ctx, `SELECT u.id, u.email, u.role, u.created_at
		FROM sessions s JOIN users u ON u.id = s.user_id
		WHERE s.token_hash = $1 AND s.expires_at > now() AND u.disabled_at IS NULL`, hash[:]).
		Scan(&u.ID, &u.Email, &u.Role, &u.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return auth.User{}, derrors.ErrNotFound
	}
	if err != nil {
		return auth.User{}, fmt.Errorf("pgstore: session: %w", err)
	}
	return u, nil
}

// DeleteSession ends a session.
func (s *Store) DeleteSession(ctx context.Context, hash auth.KeyHash) error {
	if _, err := s.pool.Exec(ctx, "DELETE FROM sessions WHERE token_hash = $1", hash[:]); err != nil {
		return fmt.Errorf("pgstore: delete session: %w", err)
	}
	return nil
}

// ListUsers returns every active user ordered by e-mail.
func (s *Store) ListUsers(ctx context.Context) ([]auth.User, error) {
	rows, err := s.pool.Query(ctx,
		"SELECT id, email, role, created_at FROM users WHERE disabled_at IS NULL ORDER BY email")
	if err != nil {
		return nil, fmt.Errorf("pgstore: list users: %w", err)
	}
	users, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (auth.User, error) {
		var u auth.User
		err := row.Scan(&u.ID, &u.Email, &u.Role, &u.CreatedAt)
		return u, err
	})
	if err != nil {
		return nil, fmt.Errorf("pgstore: list users: %w", err)
	}
	return users, nil
}
