package chsink_test

import (
	"context"
	"testing"
	"time"

	"github.com/liftlab/lift/ingest"
	"github.com/liftlab/lift/ingest/chsink"
	"github.com/liftlab/lift/internal/testenv"
)

// The live view reads the newest events and exposures back, newest first, each once
// even before the ReplacingMergeTree collapsed a redelivery, and filtered.
func TestRecentEventsAndExposures(t *testing.T) {
	t.Parallel()
	addr, db := testenv.ClickHouse(t)
	sink, err := chsink.Open(addr, db)
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	var batch []ingest.Event
	for i, typ := range []string{ingest.TypePageView, ingest.TypeClick, ingest.TypePurchase, ingest.TypeExposure} {
		e := ingest.Event{ID: ingest.NewID(), Type: typ, UserID: []string{"u1", "u2"}[i%2], Timestamp: now.Add(time.Duration(i) * time.Second),
			ReceivedAt: now.Add(time.Duration(i) * time.Second), Properties: []byte(`{"i":1}`)}
		if typ == ingest.TypeExposure {
			e.Exposure = &ingest.Exposure{Experiment: "hero", Variant: "bold", AssignmentProbability: 0.5}
		}
		batch = append(batch, e)
	}
	old := ingest.Event{ID: ingest.NewID(), Type: ingest.TypeClick, UserID: "u1", Timestamp: now.Add(-3 * 24 * time.Hour), ReceivedAt: now.Add(-3 * 24 * time.Hour)}
	batch = append(batch, old)
	for range 2 { // a redelivered batch lands twice
		if err := sink.Insert(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	got, err := sink.RecentEvents(ctx, ingest.FeedFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].Type != ingest.TypePurchase || got[2].Type != ingest.TypePageView || string(got[0].Properties) != `{"i":1}` {
		t.Errorf("recent events: %+v", got)
	}
	if got, _ := sink.RecentEvents(ctx, ingest.FeedFilter{UserID: "u1"}); len(got) != 2 {
		t.Errorf("u1's events: %d, want 2 (the old one is outside the view)", len(got))
	}
	if got, _ := sink.RecentEvents(ctx, ingest.FeedFilter{Type: ingest.TypeClick, Limit: 1}); len(got) != 1 || got[0].UserID != "u2" {
		t.Errorf("clicks: %+v", got)
	}
	xs, err := sink.RecentExposures(ctx, ingest.FeedFilter{Experiment: "hero"})
	if err != nil || len(xs) != 1 || xs[0].Exposure.Variant != "bold" || xs[0].UserID != "u2" {
		t.Errorf("exposures: %+v, %v", xs, err)
	}
	if xs, _ := sink.RecentExposures(ctx, ingest.FeedFilter{Experiment: "other"}); len(xs) != 0 {
		t.Errorf("other experiment's exposures: %+v", xs)
	}
}

// Rows stored before the collector stopped believing a client's received_at, dated
// 2105, sorted first and took the live view over for good. They are left out; the
// view shows the present.
func TestRecentEventsLeaveOutTheFuture(t *testing.T) {
	t.Parallel()
	addr, db := testenv.ClickHouse(t)
	sink, err := chsink.Open(addr, db)
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	future := time.Date(2105, 6, 1, 0, 0, 0, 0, time.UTC)
	x := &ingest.Exposure{Experiment: "hero", Variant: "bold", AssignmentProbability: 0.5}
	batch := []ingest.Event{
		{ID: ingest.NewID(), Type: ingest.TypeClick, UserID: "honest", Timestamp: now, ReceivedAt: now},
		{ID: ingest.NewID(), Type: ingest.TypeExposure, UserID: "honest", Timestamp: now, ReceivedAt: now, Exposure: x},
	}
	for i := range 60 { // more than a page
		at := future.Add(time.Duration(i) * time.Second)
		batch = append(batch, ingest.Event{ID: ingest.NewID(), Type: ingest.TypeClick, UserID: "mallory", Timestamp: at, ReceivedAt: at},
			ingest.Event{ID: ingest.NewID(), Type: ingest.TypeExposure, UserID: "mallory", Timestamp: at, ReceivedAt: at, Exposure: x})
	}
	if err := sink.Insert(ctx, batch); err != nil {
		t.Fatal(err)
	}
	got, err := sink.RecentEvents(ctx, ingest.FeedFilter{})
	if err != nil || len(got) != 1 || got[0].UserID != "honest" {
		t.Errorf("recent events: %+v, %v; want the honest one only", got, err)
	}
	xs, err := sink.RecentExposures(ctx, ingest.FeedFilter{})
	if err != nil || len(xs) != 1 || xs[0].UserID != "honest" {
		t.Errorf("recent exposures: %+v, %v; want the honest one only", xs, err)
	}
}
