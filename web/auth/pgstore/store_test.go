package pgstore_test

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/liftlab/lift/internal/derrors"
	"github.com/liftlab/lift/internal/testenv"
	"github.com/liftlab/lift/web/auth"
	"github.com/liftlab/lift/web/auth/pgstore"
)

func newStore(t *testing.T) *pgstore.Store {
	pool, err := pgxpool.New(context.Background(), testenv.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pgstore.New(pool)
}

func TestKeys(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	secret, k, err := auth.CreateKey(ctx, s, "site", auth.ClientKey, "tester")
	if err != nil {
		t.Fatal(err)
	}
	ring := auth.NewKeyRing(s)
	if err := ring.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	got, ok := ring.Lookup(secret)
	if !ok || got.ID != k.ID || got.Kind != auth.ClientKey || got.Name != "site" {
		t.Fatalf("lookup: %+v %v", got, ok)
	}
	if _, ok := ring.Lookup(secret + "x"); ok {
		t.Error("a different secret was accepted")
	}
	if err := s.RevokeKey(ctx, k.ID, "tester"); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeKey(ctx, k.ID, "tester"); !errors.Is(err, derrors.ErrNotFound) {
		t.Errorf("revoking twice: %v, want ErrNotFound", err)
	}
	if err := ring.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := ring.Lookup(secret); ok {
		t.Error("revoked key still accepted")
	}
	keys, err := s.ListKeys(ctx)
	if err != nil || len(keys) != 1 || keys[0].RevokedAt == nil || keys[0].Prefix != auth.Prefix(secret) {
		t.Errorf("list: %+v, %v", keys, err)
	}
}

func TestUsers(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	u, err := auth.CreateUser(ctx, s, " Ada@Example.com ", auth.Editor, "a long password", "tester")
	if err != nil {
		t.Fatal(err)
	}
	if u.Email != "ada@example.com" {
		t.Errorf("email not normalised: %q", u.Email)
	}
	if _, err := auth.CreateUser(ctx, s, "ada@example.com", auth.Viewer, "another password", "tester"); !errors.Is(err, derrors.ErrConflict) {
		t.Errorf("duplicate user: %v, want ErrConflict", err)
	}
	got, err := s.UserByEmail(ctx, "ada@example.com")
	if err != nil || got.Role != auth.Editor || !auth.VerifyPassword(got.PasswordHash, "a long password") {
		t.Errorf("user by email: %+v, %v", got, err)
	}
	if _, err := s.UserByEmail(ctx, "nobody@example.com"); !errors.Is(err, derrors.ErrNotFound) {
		t.Errorf("missing user: %v, want ErrNotFound", err)
	}
}
