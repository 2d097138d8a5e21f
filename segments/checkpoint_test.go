package segments_test

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/liftlab/lift/segments"
)

// stream makes a seeded, realistic input: users browsing, adding to cart and buying,
// with event times mostly increasing, some out of order within the lateness, a few
// too late, and a few received out of order (a slow collector).
func stream(seed uint64, users, n int) []segments.Event {
	r := rand.New(rand.NewPCG(seed, 1))
	types := []string{"page_view", "product_view", "product_view", "product_view", "add_to_cart", "purchase"}
	cats := []string{`{"category":"shoes"}`, `{"category":"hats"}`, `{"category":"boots","price":120}`}
	evs := make([]segments.Event, n)
	clock := t0
	for i := range evs {
		clock = clock.Add(time.Duration(r.IntN(400)) * time.Millisecond)
		at, received := clock, clock
		switch p := r.IntN(100); {
		case p < 10:
			at = at.Add(-time.Duration(r.IntN(50)) * time.Second) // within lateness
		case p < 11:
			at = at.Add(-10 * time.Minute) // late
		case p < 13:
			received = clock.Add(-3 * time.Second) // overtaken on its way
			at = received
		}
		typ := types[r.IntN(len(types))]
		evs[i] = segments.Event{
			Offset: int64(i), UserID: fmt.Sprintf("user-%d", r.IntN(users)), Type: typ, Time: at,
			ReceivedAt: received, Properties: []byte(cats[r.IntN(len(cats))]),
		}
		if typ == "purchase" {
			evs[i].Value = float64(r.IntN(200))
		}
	}
	return evs
}

func testDefinitions(t testing.TB) []segments.Definition {
	return []segments.Definition{
		def(t, "high-intent", highIntent, 5*time.Minute),
		def(t, "cart", cartRule, 0),
		def(t, "big-spender", `{"event":"purchase","sum_gte":300,"within":"1h"}`, 10*time.Minute),
		def(t, "boots-buyer", `{"and":[{"event":"product_view","where":{"price":{"$gte":100}},"count_gte":2,"within":"20m"},{"event":"purchase","within":"168h"}]}`, 0),
		def(t, "browser", `{"or":[{"event":"page_view","count_gte":5,"within":"5m"},{"sequence":[{"event":"product_view"},{"event":"add_to_cart"},{"event":"product_view"}],"within":"15m"}]}`, time.Minute),
	}
}

func run(eng *segments.Engine, evs []segments.Event) {
	for _, ev := range evs {
		eng.Process(ev)
	}
}

func newRecording(t testing.TB, sink *[]segments.Change) *segments.Engine {
	eng, err := segments.NewEngine(testDefinitions(t), segments.Options{
		OnChange: func(c segments.Change) { *sink = append(*sink, c) },
	})
	if err != nil {
		t.Fatal(err)
	}
	return eng
}

func sortChanges(cs []segments.Change) []segments.Change {
	slices.SortStableFunc(cs, func(a, b segments.Change) int {
		return cmp3(a.At.Compare(b.At), cmp3(strings.Compare(a.UserID, b.UserID),
			cmp3(strings.Compare(a.Segment, b.Segment), int(a.Kind)-int(b.Kind))))
	})
	return cs
}

func cmp3(first, then int) int {
	if first != 0 {
		return first
	}
	return then
}

// TestRestartResumes stops an engine mid-stream, restores the last checkpoint in a
// new one, replays from the checkpoint's offset, and expects the changes of an
// uninterrupted run: nothing lost, nothing counted twice.
func TestRestartResumes(t *testing.T) {
	evs := stream(42, 300, 60000)
	var want []segments.Change
	whole := newRecording(t, &want)
	run(whole, evs)
	if len(want) < 100 {
		t.Fatalf("only %d changes: the stream does not exercise the rules", len(want))
	}

	var got []segments.Change
	first := newRecording(t, &got)
	run(first, evs[:25000])
	var checkpoint bytes.Buffer
	if err := first.Snapshot(&checkpoint); err != nil {
		t.Fatal(err)
	}
	// The process keeps going, then dies: what it emitted after the checkpoint is
	// emitted again after the restart (the sink is idempotent), so drop it here.
	atCheckpoint := len(got)
	run(first, evs[25000:31000])
	got = got[:atCheckpoint]

	second := newRecording(t, &got)
	if res, err := second.Restore(bytes.NewReader(checkpoint.Bytes())); err != nil || res.Missing != nil || res.Renamed != nil || res.Dropped != nil {
		t.Fatalf("Restore = %+v, %v", res, err)
	}
	if second.Offset() != 24999 {
		t.Fatalf("restored offset = %d, want 24999", second.Offset())
	}
	// Replay a little before the checkpoint too, as an at-least-once source would.
	run(second, evs[24000:])
	if d := second.Stats().Duplicates; d != 1000 {
		t.Errorf("duplicates = %d, want 1000", d)
	}
	if diff := cmp.Diff(sortChanges(want), sortChanges(got)); diff != "" {
		t.Errorf("changes after restart differ (-uninterrupted +restarted):\n%s", diff)
	}
	if diff := cmp.Diff(members(whole), members(second)); diff != "" {
		t.Errorf("members after restart differ (-uninterrupted +restarted):\n%s", diff)
	}
	ws, gs := whole.Stats(), second.Stats()
	// Stale timers depend on the history, not the state.
	gs.Duplicates, gs.Timers = ws.Duplicates, ws.Timers
	if ws != gs {
		t.Errorf("stats after restart = %+v, want %+v", gs, ws)
	}
}

func members(eng *segments.Engine) []segments.Membership {
	ms := slices.Collect(eng.Members())
	slices.SortFunc(ms, func(a, b segments.Membership) int {
		return cmp3(strings.Compare(a.UserID, b.UserID), strings.Compare(a.Segment, b.Segment))
	})
	return ms
}

func TestRestoreRejectsCorruptInput(t *testing.T) {
	var sink []segments.Change
	eng := newRecording(t, &sink)
	run(eng, stream(1, 50, 2000))
	var cp bytes.Buffer
	if err := eng.Snapshot(&cp); err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{0, 5, 20, cp.Len() / 2, cp.Len() - 1} {
		fresh := newRecording(t, &sink)
		if _, err := fresh.Restore(bytes.NewReader(cp.Bytes()[:n])); !errors.Is(err, segments.ErrCorruptCheckpoint) {
			t.Errorf("restore of %d bytes: %v, want ErrCorruptCheckpoint", n, err)
		}
		if s := fresh.Stats(); s.Users != 0 || s.Offset != -1 {
			t.Errorf("after a failed restore: %+v, want an empty engine", s)
		}
	}
}
