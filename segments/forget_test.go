package segments_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/liftlab/lift/segments"
)

// A forgotten user is gone from the engine and from its next checkpoint, emits no
// change, and starts from nothing if they come back.
func TestForget(t *testing.T) {
	rule, err := segments.ParseRuleJSON([]byte(`{"event":"product_view","count_gte":2,"within":"10m"}`))
	if err != nil {
		t.Fatal(err)
	}
	var changes []segments.Change
	e, err := segments.NewEngine([]segments.Definition{{Key: "keen", Rule: rule}}, segments.Options{OnChange: func(c segments.Change) { changes = append(changes, c) }})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	off := int64(0)
	view := func(user string, at time.Time) {
		off++
		e.Process(segments.Event{Offset: off, UserID: user, Type: "product_view", Time: at})
	}
	view("gone", t0)
	view("gone", t0.Add(time.Second))
	view("kept", t0.Add(2*time.Second))
	if len(changes) != 1 || changes[0].UserID != "gone" {
		t.Fatalf("changes %+v", changes)
	}
	if !e.Forget("gone") || e.Forget("gone") || e.Forget("never-seen") {
		t.Error("Forget reported the wrong presence")
	}
	var cp bytes.Buffer
	if err := e.Snapshot(&cp); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(cp.Bytes(), []byte("gone")) || !bytes.Contains(cp.Bytes(), []byte("kept")) {
		t.Error("checkpoint after Forget still holds the user, or lost the other")
	}
	// Timers of the forgotten user fire into nothing; the user restarts from zero.
	e.Tick(t0.Add(time.Hour))
	view("gone", t0.Add(time.Hour))
	if len(changes) != 1 || e.Stats().Users != 1 { // "kept" expired meanwhile
		t.Errorf("after Forget: changes %+v, %d users", changes, e.Stats().Users)
	}
}
