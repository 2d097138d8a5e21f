package pgstore_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/liftlab/lift/experiments"
)

// TestNewExperimentDefaults: a new experiment gets sequential testing unless its
// document turns it off, and lift records when it first runs (created running, or
// at its first start), keeping both through replacements that leave them out or
// try to change the start.
func TestNewExperimentDefaults(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	svc := experiments.NewService(s)
	ctx := context.Background()
	read := func(key string) experiments.Experiment {
		t.Helper()
		doc, err := svc.Get(ctx, experiments.KindExperiment, key)
		if err != nil {
			t.Fatal(err)
		}
		var e experiments.Experiment
		if err := json.Unmarshal(doc, &e); err != nil {
			t.Fatal(err)
		}
		return e
	}
	before := time.Now().Add(-time.Second)
	for _, doc := range []string{
		`{"key":"plain","variants":[{"key":"a"},{"key":"b"}]}`,
		`{"key":"fixed","variants":[{"key":"a"},{"key":"b"}],"analysis":{"sequential":false,"min_users":50}}`,
		`{"key":"live","status":"running","variants":[{"key":"a"},{"key":"b"}],"started_at":"2020-01-01T00:00:00Z"}`,
	} {
		if _, err := svc.Create(ctx, "test", experiments.KindExperiment, []byte(doc)); err != nil {
			t.Fatal(err)
		}
	}
	if e := read("plain"); !e.SequentialTesting() || e.StartedAt != nil {
		t.Errorf("plain: sequential %v, started %v; want sequential and not started", e.SequentialTesting(), e.StartedAt)
	}
	if e := read("fixed"); e.SequentialTesting() || e.MinUsers() != 50 || e.MinRuntime() != experiments.DefaultMinRuntime {
		t.Errorf("fixed: sequential %v, minimum %d users %v", e.SequentialTesting(), e.MinUsers(), e.MinRuntime())
	}
	live := read("live")
	if live.StartedAt == nil || live.StartedAt.Before(before) {
		t.Errorf("created running: started at %v, want now (a request cannot set it)", live.StartedAt)
	}
	if _, err := svc.Transition(ctx, "test", "plain", "start"); err != nil {
		t.Fatal(err)
	}
	started := read("plain").StartedAt
	if started == nil || started.Before(before) {
		t.Fatalf("started: %v", started)
	}
	// A replacement that leaves sequential out and sends another start keeps both.
	if _, err := svc.Replace(ctx, "test", experiments.KindExperiment, "plain",
		[]byte(`{"key":"plain","variants":[{"key":"a"},{"key":"b"}],"started_at":"2020-01-01T00:00:00Z"}`)); err != nil {
		t.Fatal(err)
	}
	if e := read("plain"); !e.SequentialTesting() || e.StartedAt == nil || !e.StartedAt.Equal(*started) {
		t.Errorf("after a replacement: sequential %v, started %v, want true and %v", e.SequentialTesting(), e.StartedAt, started)
	}
	// Pausing and starting again does not move the start.
	for _, action := range []string{"pause", "start"} {
		if _, err := svc.Transition(ctx, "test", "plain", action); err != nil {
			t.Fatal(err)
		}
	}
	if e := read("plain"); !e.StartedAt.Equal(*started) {
		t.Errorf("after pause and start: %v, want %v", e.StartedAt, started)
	}
}
