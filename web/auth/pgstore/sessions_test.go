package pgstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/liftlab/lift/internal/derrors"
	"github.com/liftlab/lift/web/auth"
)

func TestSessions(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	u, err := auth.CreateUser(ctx, s, "ann@example.com", auth.Editor, "a long password", "tester")
	if err != nil {
		t.Fatal(err)
	}
	live, expired := auth.HashKey("live"), auth.HashKey("expired")
	if err := s.CreateSession(ctx, live, u.ID, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateSession(ctx, expired, u.ID, time.Now().Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	got, err := s.SessionUser(ctx, live)
	if err != nil || got.Email != "ann@example.com" || got.Role != auth.Editor {
		t.Fatalf("SessionUser(live) = %+v, %v", got, err)
	}
	for name, h := range map[string]auth.KeyHash{"expired": expired, "unknown": auth.HashKey("nope")} {
		if _, err := s.SessionUser(ctx, h); !errors.Is(err, derrors.ErrNotFound) {
			t.Errorf("SessionUser(%s): %v, want ErrNotFound", name, err)
		}
	}
	if err := s.DeleteSession(ctx, live); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SessionUser(ctx, live); !errors.Is(err, derrors.ErrNotFound) {
		t.Errorf("after logout: %v", err)
	}
	users, err := s.ListUsers(ctx)
	if err != nil || len(users) != 1 || users[0].Email != "ann@example.com" {
		t.Errorf("ListUsers = %+v, %v", users, err)
	}
}
