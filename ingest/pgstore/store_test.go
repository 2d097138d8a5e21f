package pgstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/liftlab/lift/ingest"
	"github.com/liftlab/lift/ingest/pgstore"
	"github.com/liftlab/lift/ingest/typereg"
	"github.com/liftlab/lift/internal/derrors"
	"github.com/liftlab/lift/internal/testenv"
)

func TestEventTypes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, testenv.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	store := pgstore.New(pool)
	svc := typereg.NewService(store)
	reg := typereg.New(store)

	if _, err := svc.Create(ctx, "test", "signup", []byte(`{"type":"object","required":["plan"]}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Create(ctx, "test", "signup", []byte(`{"type":"object"}`)); !errors.Is(err, derrors.ErrConflict) {
		t.Fatalf("second create: got %v, want ErrConflict", err)
	}
	if _, err := svc.Update(ctx, "test", "missing", []byte(`{"type":"object"}`)); !errors.Is(err, derrors.ErrNotFound) {
		t.Fatalf("update of a missing type: got %v, want ErrNotFound", err)
	}
	v2, err := svc.Update(ctx, "test", "signup", []byte(`{"type":"object","required":["plan"],"properties":{"coupon":{"type":"string"}}}`))
	if err != nil || v2.Version != 2 {
		t.Fatalf("update: %+v, %v", v2, err)
	}
	// A concurrent writer that saved the same version first wins.
	if err := store.InsertType(ctx, ingest.EventType{Name: "signup", Version: 2, Schema: []byte(`{}`), CreatedAt: time.Now()}); !errors.Is(err, derrors.ErrConflict) {
		t.Fatalf("duplicate version: got %v, want ErrConflict", err)
	}
	vs, err := svc.Versions(ctx, "signup")
	if err != nil || len(vs) != 2 || vs[0].Version != 1 || vs[1].CreatedBy != "test" {
		t.Fatalf("versions: %+v, %v", vs, err)
	}

	if err := reg.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	s, ok := reg.Lookup("signup")
	if !ok {
		t.Fatal("registry does not know signup")
	}
	if err := s.ValidateProperties([]byte(`{"plan":"pro","coupon":1}`)); err == nil {
		t.Error("version 2 should refuse a numeric coupon")
	}
	if _, ok := reg.Lookup("page_view"); ok {
		t.Error("built-in types are not in the registry")
	}
}
