package pgstore_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/liftlab/lift/internal/testenv"
	"github.com/liftlab/lift/segments"
	"github.com/liftlab/lift/segments/pgstore"
	"github.com/liftlab/lift/segments/webhooks"
)

// An erasure ends the user's memberships (which followers see), deletes them, and
// takes the user out of a checkpoint: by the shard at its next checkpoint, or here
// when no engine runs the shard.
func TestErasure(t *testing.T) {
	t.Parallel()
	url := testenv.Postgres(t)
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	s := pgstore.New(pool)
	ctx := context.Background()
	now := time.Now().UTC()
	if err := s.Apply(ctx, []segments.Change{
		{Kind: segments.Enter, UserID: "gone", Segment: "keen", At: now},
		{Kind: segments.Enter, UserID: "kept", Segment: "keen", At: now},
	}); err != nil {
		t.Fatal(err)
	}
	members := &set{m: map[string]bool{}}
	fctx, stop := context.WithCancel(ctx)
	defer stop()
	go s.Follow(fctx, url, members, 50*time.Millisecond, slog.New(slog.NewTextHandler(io.Discard, nil)))
	testenv.Eventually(t, 10*time.Second, "keen/gone to become a member", func() bool { m, _ := members.get("keen/gone"); return m })
	if n, err := s.EndMemberships(ctx, []string{"gone"}); err != nil || n != 1 {
		t.Fatalf("ended %d, %v", n, err)
	}
	testenv.Eventually(t, 10*time.Second, "keen/gone's membership to end", func() bool { m, ok := members.get("keen/gone"); return ok && !m })
	rows, err := s.Memberships(ctx, []string{"gone"})
	if err != nil || len(rows) != 1 || rows[0]["member"] != false {
		t.Errorf("memberships %v, %v", rows, err)
	}
	if n, err := s.DeleteMemberships(ctx, []string{"gone"}); err != nil || n != 1 {
		t.Errorf("deleted %d, %v", n, err)
	}
	if rows, _ := s.Memberships(ctx, []string{"gone", "kept"}); len(rows) != 1 || rows[0]["user_id"] != "kept" {
		t.Errorf("left %v", rows)
	}

	// A checkpoint with both users, for shard 0; shard 1 has none.
	rule, _ := segments.ParseRuleJSON([]byte(`{"event":"view","count_gte":1,"within":"1h"}`))
	defs := []segments.Definition{{Key: "keen", Rule: rule}}
	e, _ := segments.NewEngine(defs, segments.Options{OnChange: func(segments.Change) {}})
	e.Process(segments.Event{Offset: 1, UserID: "gone", Type: "view", Time: now})
	e.Process(segments.Event{Offset: 2, UserID: "kept", Type: "view", Time: now})
	var cp bytes.Buffer
	if err := e.Snapshot(&cp); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveCheckpoint(ctx, 0, 0, segments.Checkpoint{Definitions: "keen@1", Shards: 1, State: cp.Bytes()}); err != nil {
		t.Fatal(err)
	}
	if err := s.RequestErasure(ctx, "job-1", []string{"gone"}); err != nil {
		t.Fatal(err)
	}
	if ids, err := s.PendingErasures(ctx, 0); err != nil || len(ids) != 1 || ids[0] != "gone" {
		t.Fatalf("pending on shard 0: %v, %v", ids, err)
	}
	if ids, _ := s.PendingErasures(ctx, 1); len(ids) != 0 {
		t.Errorf("pending on shard 1 (no checkpoint): %v", ids)
	}
	pending, err := s.ErasurePending(ctx, "job-1")
	if err != nil || len(pending) != 1 || pending[0].Shard != 0 || time.Since(pending[0].SavedAt) > time.Minute {
		t.Fatalf("job pending %+v, %v", pending, err)
	}
	// No engine runs shard 0: edit its checkpoint.
	ok, err := s.ForgetInCheckpoint(ctx, 0, []string{"gone"}, defs, "keen@1")
	if err != nil || !ok {
		t.Fatalf("forget in checkpoint: %v, %v", ok, err)
	}
	saved, _, _ := s.LoadCheckpoint(ctx, 0)
	if bytes.Contains(saved.State, []byte("gone")) || !bytes.Contains(saved.State, []byte("kept")) {
		t.Error("edited checkpoint still holds the user, or lost the other")
	}
	if pending, _ := s.ErasurePending(ctx, "job-1"); len(pending) != 0 {
		t.Errorf("still pending %+v", pending)
	}
	// A checkpoint of other definitions cannot be restored: it is deleted.
	if err := s.RequestErasure(ctx, "job-2", []string{"kept"}); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.ForgetInCheckpoint(ctx, 0, []string{"kept"}, defs, "other@2"); err != nil || !ok {
		t.Fatalf("forget in a stale checkpoint: %v, %v", ok, err)
	}
	if _, found, _ := s.LoadCheckpoint(ctx, 0); found {
		t.Error("checkpoint of other definitions kept")
	}
	// A shard that confirms itself.
	if err := s.SaveCheckpoint(ctx, 3, 0, segments.Checkpoint{Definitions: "keen@1", Shards: 1, State: cp.Bytes()}); err != nil {
		t.Fatal(err)
	}
	if err := s.RequestErasure(ctx, "job-3", []string{"x"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Forgotten(ctx, 3, []string{"x"}); err != nil {
		t.Fatal(err)
	}
	if pending, _ := s.ErasurePending(ctx, "job-3"); len(pending) != 0 {
		t.Errorf("job-3 pending %+v", pending)
	}
}

// An erasure deletes the user's segment changes from the webhook outbox, those
// waiting and the dead letters, and leaves the other users' alone.
func TestForgetDeliveries(t *testing.T) {
	t.Parallel()
	pool, err := pgxpool.New(context.Background(), testenv.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	s := pgstore.New(pool)
	ctx := context.Background()
	if _, err := s.CreateWebhook(ctx, "user:test", webhooks.Webhook{Key: "crm", URL: "https://crm.example.com/hook"}); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	if err := s.Apply(ctx, []segments.Change{
		{Kind: segments.Enter, UserID: "gone", Segment: "keen", At: now},
		{Kind: segments.Enter, UserID: "gone", Segment: "loyal", At: now},
		{Kind: segments.Enter, UserID: "kept", Segment: "keen", At: now},
	}); err != nil {
		t.Fatal(err)
	}
	// One of gone's changes was given up: a dead letter.
	if _, err := pool.Exec(ctx, "UPDATE segment_webhook_outbox SET dead_at = now() WHERE user_id = 'gone' AND segment = 'loyal'"); err != nil {
		t.Fatal(err)
	}
	pending, dead, err := s.ForgetDeliveries(ctx, []string{"gone", "nobody"})
	if err != nil || pending != 1 || dead != 1 {
		t.Fatalf("forgot %d pending and %d dead (%v), want 1 and 1", pending, dead, err)
	}
	rows, _ := pool.Query(ctx, "SELECT user_id FROM segment_webhook_outbox")
	left, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(left) != 1 || left[0] != "kept" {
		t.Errorf("outbox holds %v (%v), want only kept's change", left, err)
	}
}
