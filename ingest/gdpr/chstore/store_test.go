package chstore_test

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/liftlab/lift/ingest"
	"github.com/liftlab/lift/ingest/chsink"
	"github.com/liftlab/lift/ingest/gdpr"
	"github.com/liftlab/lift/ingest/gdpr/chstore"
	"github.com/liftlab/lift/internal/testenv"
	"github.com/liftlab/lift/migrations"
)

func setup(t *testing.T) (*chstore.Store, func(query string) uint64) {
	t.Helper()
	addr, db := testenv.ClickHouse(t)
	sink, err := chsink.Open(addr, db)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sink.Close() })
	now := time.Now().UTC().Truncate(time.Second)
	var batch []ingest.Event
	for _, u := range []string{"alice", "bob"} {
		batch = append(batch,
			ingest.Event{ID: ingest.NewID(), Type: ingest.TypePurchase, UserID: u, Timestamp: now, ReceivedAt: now, Value: 3, Properties: json.RawMessage(`{"sku":"x"}`)},
			ingest.Event{ID: ingest.NewID(), Type: ingest.TypeExposure, UserID: u, Timestamp: now, ReceivedAt: now,
				Exposure: &ingest.Exposure{Experiment: "hero", Variant: "bold", AssignmentProbability: 0.5}})
	}
	// anon-1 is linked by a server key and by a client key, anon-2 by an event
	// without a source (as stored before sources were recorded).
	identify := func(anon string, src ingest.Source) ingest.Event {
		return ingest.Event{ID: ingest.NewID(), Type: ingest.TypeIdentify, UserID: "alice", Timestamp: now, ReceivedAt: now,
			Properties: json.RawMessage(`{"anonymous_id":"` + anon + `"}`), Source: src}
	}
	batch = append(batch, identify("anon-1", ingest.SourceServer), identify("anon-1", ingest.SourceClient), identify("anon-2", ""))
	if err := sink.Insert(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	s, err := chstore.Open(addr, db)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	conn := migrations.OpenClickHouse(addr, db)
	t.Cleanup(func() { conn.Close() })
	count := func(q string) uint64 {
		var n uint64
		if err := conn.QueryRow(q).Scan(&n); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return n
	}
	return s, count
}

func TestTablesAndExport(t *testing.T) {
	t.Parallel()
	s, _ := setup(t)
	ctx := context.Background()
	tables, err := s.Tables(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"events", "exposures", "first_exposures", "segment_changes"} {
		if !slices.Contains(tables, want) {
			t.Errorf("tables %v lack %s", tables, want)
		}
	}
	if slices.Contains(tables, "first_exposures_mv") || slices.Contains(tables, "daily_events") {
		t.Errorf("tables %v hold a view or a table without user_id", tables)
	}
	linked, err := s.LinkedIDs(ctx, []string{"alice"})
	want := []gdpr.Link{{ID: "anon-1", Sources: []string{"client", "server"}}, {ID: "anon-2", Sources: []string{"unknown"}}}
	if err != nil || !cmp.Equal(linked, want) {
		t.Errorf("linked ids %v, %v; want %v", linked, err, want)
	}
	if !linked[0].Trusted() || linked[1].Trusted() {
		t.Errorf("trust of %v", linked)
	}
	x, err := s.Export(ctx, []string{"alice"})
	if err != nil {
		t.Fatal(err)
	}
	if len(x["events"]) != 4 || len(x["exposures"]) != 1 || len(x["first_exposures"]) != 1 || len(x["segment_changes"]) != 0 {
		t.Errorf("export %v", x)
	}
	for _, r := range x["first_exposures"] {
		if r["variant"] != "bold" || r["user_id"] != "alice" {
			t.Errorf("first exposure %v", r)
		}
	}
	if _, err := json.Marshal(x); err != nil {
		t.Errorf("export does not encode: %v", err)
	}
}

func TestDeleteAndMutations(t *testing.T) {
	t.Parallel()
	s, count := setup(t)
	ctx := context.Background()
	if err := s.StartDelete(ctx, "events", []string{"alice"}, "lift-erasure:job-1:1"); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, time.Minute, "the mutation to be done", func() bool {
		id, done, err := s.FindMutation(ctx, "events", "lift-erasure:job-1:1")
		if err != nil || id == "" {
			t.Fatalf("mutation %q, %v", id, err)
		}
		return done
	})
	if id, _, _ := s.FindMutation(ctx, "events", "lift-erasure:job-1:2"); id != "" {
		t.Errorf("another marker found mutation %s", id)
	}
	if n, err := s.Count(ctx, "events", []string{"alice"}); err != nil || n != 0 {
		t.Errorf("alice has %d events left (%v)", n, err)
	}
	if n := count("SELECT count() FROM events WHERE user_id = 'bob'"); n != 1 {
		t.Errorf("bob has %d events, want 1", n)
	}
	if n := count("SELECT count() FROM system.mutations WHERE database = currentDatabase() AND position(command, 'alice') > 0"); n != 0 {
		t.Error("the mutation names the user")
	}
	if err := s.StartDelete(ctx, "events", []string{"alice"}, "bad'marker"); err == nil {
		t.Error("a marker that would break the query was accepted")
	}
}
