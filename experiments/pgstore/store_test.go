package pgstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/liftlab/lift/experiments"
	"github.com/liftlab/lift/experiments/pgstore"
	"github.com/liftlab/lift/internal/derrors"
	"github.com/liftlab/lift/internal/testenv"
)

func newStore(t *testing.T) (*pgstore.Store, string) {
	url := testenv.Postgres(t)
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pgstore.New(pool), url
}

func TestStoreCRUDAndAudit(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := context.Background()
	doc := json.RawMessage(`{"key":"e1","status":"draft","variants":[{"key":"a","weight":0.5},{"key":"b","weight":0.5}]}`)

	if err := s.Create(ctx, experiments.KindExperiment, "e1", doc, "tester"); err != nil {
		t.Fatal(err)
	}
	if err := s.Create(ctx, experiments.KindExperiment, "e1", doc, "tester"); !errors.Is(err, derrors.ErrConflict) {
		t.Errorf("duplicate create: %v, want ErrConflict", err)
	}
	if _, err := s.Get(ctx, experiments.KindFlag, "e1"); !errors.Is(err, derrors.ErrNotFound) {
		t.Errorf("get missing: %v, want ErrNotFound", err)
	}
	after, err := s.Update(ctx, experiments.KindExperiment, "e1", "start", "tester", func(before json.RawMessage) (json.RawMessage, error) {
		var m map[string]any
		_ = json.Unmarshal(before, &m)
		m["status"] = "running"
		return json.Marshal(m)
	})
	if err != nil || !json.Valid(after) {
		t.Fatalf("update: %v", err)
	}
	refused := errors.New("refused")
	if _, err := s.Update(ctx, experiments.KindExperiment, "e1", "update", "tester", func(json.RawMessage) (json.RawMessage, error) {
		return nil, refused
	}); !errors.Is(err, refused) {
		t.Errorf("update whose change fails: %v", err)
	}
	if _, err := s.Update(ctx, experiments.KindExperiment, "nope", "update", "tester", nil); !errors.Is(err, derrors.ErrNotFound) {
		t.Errorf("update missing: %v, want ErrNotFound", err)
	}
	cfg, err := s.LoadConfig(ctx)
	if err != nil || len(cfg.Experiments) != 1 || cfg.Experiments[0].Status != "running" {
		t.Fatalf("load config: %+v, %v", cfg, err)
	}
	if err := s.Delete(ctx, experiments.KindExperiment, "e1", "tester"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, experiments.KindExperiment, "e1", "tester"); !errors.Is(err, derrors.ErrNotFound) {
		t.Errorf("delete missing: %v, want ErrNotFound", err)
	}

	entries, err := s.Audit(ctx, experiments.AuditQuery{Entity: experiments.KindExperiment, Key: "e1"})
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range entries {
		actions = append(actions, e.Action)
		if e.Actor != "tester" {
			t.Errorf("actor %q", e.Actor)
		}
	}
	// The failed update wrote nothing: the change and its audit row share a transaction.
	if got := len(actions); got != 3 || actions[0] != "delete" || actions[1] != "start" || actions[2] != "create" {
		t.Errorf("audit actions %v, want [delete start create]", actions)
	}
	if entries[0].After != nil || entries[0].Before == nil || entries[2].Before != nil {
		t.Errorf("before/after of delete and create: %+v", entries)
	}
}

type countingReloader struct{ n atomic.Int64 }

func (c *countingReloader) Reload(context.Context) error { c.n.Add(1); return nil }

// A write by anyone (here: the store, as the API would) wakes every watcher.
func TestWatcherReloadsOnNotify(t *testing.T) {
	t.Parallel()
	s, url := newStore(t)
	r := &countingReloader{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := &pgstore.Watcher{ConnString: url, Resync: time.Hour, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Reloaders: []pgstore.Reloader{r}}
	go w.Run(ctx)

	waitFor := func(n int64) {
		t.Helper()
		if !testenv.Poll(5*time.Second, func() bool { return r.n.Load() >= n }) {
			t.Fatalf("reloads: %d, want ≥ %d", r.n.Load(), n)
		}
	}
	waitFor(1) // the reload after connecting
	before := r.n.Load()
	if err := s.Create(ctx, experiments.KindSavedGroup, "g", json.RawMessage(`{"key":"g","values":[]}`), "tester"); err != nil {
		t.Fatal(err)
	}
	waitFor(before + 1)
}
