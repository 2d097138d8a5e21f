// Package pgstore keeps API keys and users in PostgreSQL.
package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/liftlab/lift/internal/derrors"
	"github.com/liftlab/lift/web/auth"
)

// Store implements auth.KeyStore and auth.UserStore.
type Store struct {
	pool *pgxpool.Pool
}

// New returns a Store using pool.
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// keyColumns are scanned by scanKey.
const keyColumns = "id, name, kind, prefix, created_at, revoked_at, allowed_origins, expires_at"

func scanKey(row pgx.Row, extra ...any) (auth.Key, error) {
	var k auth.Key
	err := row.Scan(append([]any{&k.ID, &k.Name, &k.Kind, &k.Prefix, &k.CreatedAt, &k.RevokedAt, &k.AllowedOrigins, &k.ExpiresAt}, extra...)...)
	return k, err
}

// CreateKey stores a key by hash and records it in the audit log.
func (s *Store) CreateKey(ctx context.Context, name string, kind auth.KeyKind, hash auth.KeyHash, prefix, actor string, origins []string) (auth.Key, error) {
	if origins == nil {
		origins = []string{}
	}
	k := auth.Key{Name: name, Kind: kind, Prefix: prefix, AllowedOrigins: origins}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx,
			"INSERT INTO api_keys (name, kind, hash, prefix, allowed_origins) VALUES ($1, $2, $3, $4, $5) RETURNING id, created_at",
			name, string(kind), hash[:], prefix, origins).Scan(&k.ID, &k.CreatedAt)
		if err != nil {
			return err
		}
		return audit(ctx, tx, actor, "create", fmt.Sprint(k.ID), nil, k)
	})
	if err != nil {
		return auth.Key{}, fmt.Errorf("pgstore: create key: %w", err)
	}
	return k, nil
}

// RevokeKey returns derrors.ErrNotFound if no active key has that id.
func (s *Store) RevokeKey(ctx context.Context, id int64, actor string) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		k, err := scanKey(tx.QueryRow(ctx, `UPDATE api_keys SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL
			RETURNING `+keyColumns, id))
		if errors.Is(err, pgx.ErrNoRows) {
			return derrors.ErrNotFound
		}
		if err != nil {
			return err
		}
		return audit(ctx, tx, actor, "revoke", fmt.Sprint(id), nil, k)
	})
	if err != nil {
		return fmt.Errorf("pgstore: revoke key %d: %w", id, err)
	}
	return nil
}

// ListKeys returns every key, newest first.
func (s *Store) ListKeys(ctx context.Context) ([]auth.Key, error) {
	rows, err := s.pool.Query(ctx, "SELECT "+keyColumns+" FROM api_keys ORDER BY id DESC")
	if err != nil {
		return nil, fmt.Errorf("pgstore: list keys: %w", err)
	}
	keys, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (auth.Key, error) { return scanKey(row) })
	if err != nil {
		return nil, fmt.Errorf("pgstore: list keys: %w", err)
	}
	return keys, nil
}

// ActiveKeys returns the keys that are neither revoked nor expired, by hash.
func (s *Store) ActiveKeys(ctx context.Context) (map[auth.KeyHash]auth.Key, error) {
	rows, err := s.pool.Query(ctx, "SELECT "+keyColumns+", hash FROM api_keys WHERE revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())")
	if err != nil {
		return nil, fmt.Errorf("pgstore: active keys: %w", err)
	}
	defer rows.Close()
	keys := map[auth.KeyHash]auth.Key{}
	for rows.Next() {
		var hash []byte
		k, err := scanKey(rows, &hash)
		if err != nil {
			return nil, fmt.Errorf("pgstore: active keys: %w", err)
		}
		var h auth.KeyHash
		copy(h[:], hash)
		keys[h] = k
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("pgstore: active keys: %w", err)
	}
	return keys, nil
}

// SetOrigins replaces a key's allowed origins; derrors.ErrNotFound if no active key has
// that id.
func (s *Store) SetOrigins(ctx context.Context, id int64, origins []string, actor string) (auth.Key, error) {
	if origins == nil {
		origins = []string{}
	}
	var k auth.Key
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		before, err := scanKey(tx.QueryRow(ctx, "SELECT "+keyColumns+" FROM api_keys WHERE id = $1 AND revoked_at IS NULL FOR UPDATE", id))
		if errors.Is(err, pgx.ErrNoRows) {
			return derrors.ErrNotFound
		}
		if err != nil {
			return err
		}
		if k, err = scanKey(tx.QueryRow(ctx, "UPDATE api_keys SET allowed_origins = $2 WHERE id = $1 RETURNING "+keyColumns, id, origins)); err != nil {
			return err
		}
		return audit(ctx, tx, actor, "set-origins", fmt.Sprint(id), before, k)
	})
	if err != nil {
		return auth.Key{}, fmt.Errorf("pgstore: set origins of key %d: %w", id, err)
	}
	return k, nil
}

// RotateKey stores the successor of key id and makes the old key expire at
// expiresAt: derrors.ErrNotFound if no active key has that id, derrors.ErrConflict if it
// was rotated already.
func (s *Store) RotateKey(ctx context.Context, id int64, hash auth.KeyHash, prefix string, expiresAt time.Time, actor string) (auth.Key, error) {
	var k auth.Key
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		old, err := scanKey(tx.QueryRow(ctx, "SELECT "+keyColumns+" FROM api_keys WHERE id = $1 AND revoked_at IS NULL FOR UPDATE", id))
		if errors.Is(err, pgx.ErrNoRows) {
			return derrors.ErrNotFound
		}
		if err != nil {
			return err
		}
		if old.ExpiresAt != nil {
			return derrors.ErrConflict
		}
		k = auth.Key{Name: old.Name, Kind: old.Kind, Prefix: prefix, AllowedOrigins: old.AllowedOrigins}
		if err := tx.QueryRow(ctx, `INSERT INTO api_keys (name, kind, hash, prefix, allowed_origins) VALUES ($1, $2, $3, $4, $5)
			RETURNING id, created_at`, old.Name, string(old.Kind), hash[:], prefix, old.AllowedOrigins).Scan(&k.ID, &k.CreatedAt); err != nil {
			return err
		}
		expired, err := scanKey(tx.QueryRow(ctx, "UPDATE api_keys SET expires_at = $2 WHERE id = $1 RETURNING "+keyColumns, id, expiresAt))
		if err != nil {
			return err
		}
		if err := audit(ctx, tx, actor, "rotate", fmt.Sprint(id), old, expired); err != nil {
			return err
		}
		return audit(ctx, tx, actor, "create", fmt.Sprint(k.ID), nil, k)
	})
	if err != nil {
		return auth.Key{}, fmt.Errorf("pgstore: rotate key %d: %w", id, err)
	}
	return k, nil
}

// CreateUser returns derrors.ErrConflict if the e-mail is taken.
func (s *Store) CreateUser(ctx context.Context, email string, role auth.Role, passwordHash, actor string) (auth.User, error) {
	u := auth.User{Email: email, Role: role, PasswordHash: passwordHash}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx,
			"INSERT INTO users (email, role, password_hash) VALUES ($1, $2, $3) RETURNING id, created_at",
			email, string(role), passwordHash).Scan(&u.ID, &u.CreatedAt)
		if err != nil {
			return err
		}
		return auditEntity(ctx, tx, "user", actor, "create", email, nil, u)
	})
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		return auth.User{}, fmt.Errorf("pgstore: create user %q: %w", email, derrors.ErrConflict)
	}
	if err != nil {
		return auth.User{}, fmt.Errorf("pgstore: create user %q: %w", email, err)
	}
	return u, nil
}

// UserByEmail returns derrors.ErrNotFound if there is no such active user.
func (s *Store) UserByEmail(ctx context.Context, email string) (auth.User, error) {
	var u auth.User
	err := s.pool.QueryRow(ctx,
		"SELECT id, email, role, password_hash, created_at FROM users WHERE email = $1 AND disabled_at IS NULL", email).
		Scan(&u.ID, &u.Email, &u.Role, &u.PasswordHash, &u.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return auth.User{}, fmt.Errorf("pgstore: user %q: %w", email, derrors.ErrNotFound)
	}
	if err != nil {
		return auth.User{}, fmt.Errorf("pgstore: user %q: %w", email, err)
	}
	return u, nil
}

func audit(ctx context.Context, tx pgx.Tx, actor, action, key string, before, after any) error {
	return auditEntity(ctx, tx, "api_key", actor, action, key, before, after)
}

// auditEntity records a change; documents are stored as JSON (secrets never are:
// Key and User carry none in their JSON form).
func auditEntity(ctx context.Context, tx pgx.Tx, entity, actor, action, key string, before, after any) error {
	enc := func(v any) ([]byte, error) {
		if v == nil {
			return nil, nil
		}
		return json.Marshal(v)
	}
	b, err := enc(before)
	if err != nil {
		return err
	}
	a, err := enc(after)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx,
		"INSERT INTO audit_log (actor, action, entity, entity_key, before, after) VALUES ($1, $2, $3, $4, $5, $6)",
		actor, action, entity, key, b, a)
	return err
}
