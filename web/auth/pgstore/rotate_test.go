package pgstore_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/liftlab/lift/internal/derrors"
	"github.com/liftlab/lift/web/auth"
)

func TestOriginsAndRotation(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	oldSecret, k, err := auth.CreateKey(ctx, s, "site", auth.ClientKey, "tester", "https://shop.example")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(k.AllowedOrigins, []string{"https://shop.example"}) {
		t.Errorf("created with %v", k.AllowedOrigins)
	}
	k, err = s.SetOrigins(ctx, k.ID, []string{"https://shop.example", "https://*.brand.example"}, "tester")
	if err != nil || len(k.AllowedOrigins) != 2 {
		t.Fatalf("set origins: %+v, %v", k, err)
	}
	if _, err := s.SetOrigins(ctx, 999, nil, "tester"); !errors.Is(err, derrors.ErrNotFound) {
		t.Errorf("unknown key: %v", err)
	}
	newSecret, next, err := auth.RotateKey(ctx, s, k.ID, time.Hour, "tester")
	if err != nil {
		t.Fatal(err)
	}
	if next.ID == k.ID || next.Name != "site" || next.Kind != auth.ClientKey || len(next.AllowedOrigins) != 2 || newSecret == oldSecret {
		t.Errorf("successor %+v", next)
	}
	if _, _, err := auth.RotateKey(ctx, s, k.ID, time.Hour, "tester"); !errors.Is(err, derrors.ErrConflict) {
		t.Errorf("second rotation: %v, want ErrConflict", err)
	}
	ring := auth.NewKeyRing(s)
	if err := ring.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{oldSecret, newSecret} {
		if _, ok := ring.Lookup(secret); !ok {
			t.Errorf("key %s refused during the grace period", auth.Prefix(secret))
		}
	}
	// Once expired, the store no longer lists the old key as active.
	if _, err := s.RotateKey(ctx, next.ID, auth.HashKey("x"), "x", time.Now().Add(-time.Second), "tester"); err != nil {
		t.Fatal(err)
	}
	active, _ := s.ActiveKeys(ctx)
	if _, ok := active[auth.HashKey(newSecret)]; ok {
		t.Error("an expired key is active")
	}
}
