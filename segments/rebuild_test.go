package segments_test

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/liftlab/lift/segments"
)

func defsWithout(t testing.TB, keys ...string) []segments.Definition {
	return slices.DeleteFunc(testDefinitions(t), func(d segments.Definition) bool { return slices.Contains(keys, d.Key) })
}

func only(t testing.TB, keys ...string) []segments.Definition {
	return slices.DeleteFunc(testDefinitions(t), func(d segments.Definition) bool { return !slices.Contains(keys, d.Key) })
}

// sameMembers compares the memberships of an engine that ran all along with those of
// a rebuilt one: the same users in the same segments, exactly (an event lost or
// counted twice changes them). Entry times may differ for a few: the history is
// replayed in receive order, while the live input delivered some events (overtaken
// on their way) later than events received after them.
func sameMembers(t *testing.T, whole, rebuilt []segments.Membership) {
	t.Helper()
	key := func(ms []segments.Membership) []string {
		out := make([]string, len(ms))
		for i, m := range ms {
			out[i] = m.UserID + " " + m.Segment
		}
		return out
	}
	if diff := cmp.Diff(key(whole), key(rebuilt)); diff != "" {
		t.Fatalf("members after the rebuild differ (-from the start +rebuilt):\n%s", diff)
	}
	moved := 0
	for i := range whole {
		if !whole[i].Since.Equal(rebuilt[i].Since) {
			moved++
		}
	}
	t.Logf("%d memberships, %d with another entry time", len(whole), moved)
	if moved > len(whole)/100 {
		t.Errorf("%d of %d memberships have other entry times, want at most 1%%", moved, len(whole))
	}
}

// history is what ClickHouse holds at a rebuild: every event received before cut, in
// the order received, numbered from 0.
func history(evs []segments.Event, cut time.Time) []segments.Event {
	var h []segments.Event
	for _, ev := range evs {
		if ev.ReceivedAt.Before(cut) {
			h = append(h, ev)
		}
	}
	slices.SortStableFunc(h, func(a, b segments.Event) int { return a.ReceivedAt.Compare(b.ReceivedAt) })
	for i := range h {
		h[i].Offset = int64(i)
	}
	return h
}

// rebuild feeds a history engine for defs and merges it into eng.
func rebuild(t *testing.T, eng *segments.Engine, defs []segments.Definition, evs []segments.Event, cut time.Time) []string {
	t.Helper()
	h, err := segments.NewEngine(defs, segments.Options{})
	if err != nil {
		t.Fatal(err)
	}
	run(h, history(evs, cut))
	return eng.Merge(h)
}

// A segment added while the engine runs is rebuilt from stored events and then ends
// up with exactly the memberships of an engine that had it from the start: every
// event counted once, whether it reached the new segment from storage or live,
// including events received before the cut that the live input delivers after it.
func TestRebuildAddedSegment(t *testing.T) {
	evs := stream(7, 300, 60000)
	whole, err := segments.NewEngine(testDefinitions(t), segments.Options{})
	if err != nil {
		t.Fatal(err)
	}
	run(whole, evs)

	before, err := segments.NewEngine(defsWithout(t, "browser", "big-spender"), segments.Options{})
	if err != nil {
		t.Fatal(err)
	}
	run(before, evs[:20000])
	var cp bytes.Buffer
	if err := before.Snapshot(&cp); err != nil {
		t.Fatal(err)
	}

	var changes []segments.Change
	after := newRecording(t, &changes)
	res, err := after.Restore(bytes.NewReader(cp.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"big-spender", "browser"}, res.Missing); diff != "" || res.Renamed != nil || res.Dropped != nil {
		t.Fatalf("Restore = %+v (missing -want +got %s)", res, diff)
	}
	cut := after.Received().Add(time.Millisecond)
	after.StartRebuild(res.Missing, cut)
	run(after, evs[20000:23000]) // live while the history is read
	for _, c := range changes {
		if c.Segment == "browser" || c.Segment == "big-spender" {
			t.Fatalf("a rebuilding segment reported %+v", c)
		}
	}
	if done := rebuild(t, after, only(t, "browser", "big-spender"), evs, cut); len(done) != 2 || after.Rebuilding() != nil {
		t.Fatalf("Merge ended %v, still rebuilding %v", done, after.Rebuilding())
	}
	run(after, evs[23000:])
	want := members(whole)
	if len(want) < 50 {
		t.Fatalf("only %d members: the stream does not exercise the rules", len(want))
	}
	sameMembers(t, want, members(after))
}

// Without any checkpoint every segment is rebuilt: live input from a little before
// the cut (as a stream read from a timestamp gives it), history before it.
func TestRebuildWithoutCheckpoint(t *testing.T) {
	evs := stream(11, 300, 50000)
	whole, err := segments.NewEngine(testDefinitions(t), segments.Options{})
	if err != nil {
		t.Fatal(err)
	}
	run(whole, evs)

	var changes []segments.Change
	fresh := newRecording(t, &changes)
	cut := evs[30000].ReceivedAt
	keys := make([]string, 0, 5)
	for _, d := range testDefinitions(t) {
		keys = append(keys, d.Key)
	}
	fresh.StartRebuild(keys, cut)
	start := slices.IndexFunc(evs, func(ev segments.Event) bool { return !ev.ReceivedAt.Before(cut.Add(-10 * time.Second)) })
	run(fresh, evs[start:35000])
	if len(changes) != 0 {
		t.Fatalf("changes while rebuilding: %v", changes[:1])
	}
	if done := rebuild(t, fresh, testDefinitions(t), evs, cut); len(done) != 5 {
		t.Fatalf("Merge ended %v", done)
	}
	run(fresh, evs[35000:])
	sameMembers(t, members(whole), members(fresh))
}

// State follows content: a renamed segment (a published draft) keeps its state, a
// changed rule is missing, a removed key is dropped; the kept segments go on as if
// nothing had happened.
func TestRestoreMatchesByContent(t *testing.T) {
	evs := stream(3, 200, 30000)
	whole, err := segments.NewEngine(testDefinitions(t), segments.Options{})
	if err != nil {
		t.Fatal(err)
	}
	run(whole, evs)
	first, err := segments.NewEngine(testDefinitions(t), segments.Options{})
	if err != nil {
		t.Fatal(err)
	}
	run(first, evs[:15000])
	var cp bytes.Buffer
	if err := first.Snapshot(&cp); err != nil {
		t.Fatal(err)
	}
	defs := defsWithout(t, "browser")
	defs[0].Key = "high-intent-v2"                                              // same rule and TTL
	defs[1] = def(t, "cart", cartRule, time.Minute)                             // same rule, other TTL
	defs = append(defs, def(t, "new", `{"event":"purchase","within":"1h"}`, 0)) // new
	second, err := segments.NewEngine(defs, segments.Options{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := second.Restore(bytes.NewReader(cp.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	want := segments.Restored{Missing: []string{"cart", "new"}, Renamed: []string{"high-intent-v2"}, Dropped: []string{"high-intent", "browser"}}
	if diff := cmp.Diff(want, res); diff != "" {
		t.Fatalf("Restore (-want +got):\n%s", diff)
	}
	run(second, evs[15000:])
	pick := func(e *segments.Engine, seg string) []string {
		var users []string
		for _, m := range members(e) {
			if m.Segment == seg {
				users = append(users, m.UserID+"@"+m.Since.Format(time.TimeOnly))
			}
		}
		return users
	}
	for from, to := range map[string]string{"high-intent": "high-intent-v2", "big-spender": "big-spender", "boots-buyer": "boots-buyer"} {
		w, g := pick(whole, from), pick(second, to)
		if len(w) == 0 {
			t.Errorf("%s has no members: the stream does not exercise it", from)
		}
		if diff := cmp.Diff(w, g); diff != "" {
			t.Errorf("%s after restoring as %s (-uninterrupted +restored):\n%s", from, to, diff)
		}
	}
}

// An event received before the cut but delivered live after it (the live input is
// read from a little before the cut) counts once: from storage. Counted twice, the
// user would have had three views at 0:05.
func TestRebuildCountsAStragglerOnce(t *testing.T) {
	h := newHarness(t, def(t, "high-intent", highIntent, 0))
	view := func(offset int64, at time.Duration) segments.Event {
		return segments.Event{Offset: offset, UserID: "u1", Type: "product_view", Time: t0.Add(at), ReceivedAt: t0.Add(at)}
	}
	h.eng.StartRebuild([]string{"high-intent"}, t0.Add(10*time.Second))
	h.eng.Process(view(100, 5*time.Second)) // received before the cut: stored too
	h.eng.Process(view(101, 11*time.Second))
	stored, err := segments.NewEngine([]segments.Definition{def(t, "high-intent", highIntent, 0)}, segments.Options{})
	if err != nil {
		t.Fatal(err)
	}
	stored.Process(view(0, 0))
	stored.Process(view(1, 5*time.Second))
	if done := h.eng.Merge(stored); len(done) != 1 {
		t.Fatalf("Merge ended %v", done)
	}
	h.want() // the merge itself reports nothing: the caller reconciles
	var got []string
	for _, m := range members(h.eng) {
		got = append(got, m.UserID+" "+m.Since.Format(time.TimeOnly))
	}
	if diff := cmp.Diff([]string{"u1 12:00:11"}, got); diff != "" {
		t.Errorf("members after the merge (-want +got):\n%s", diff)
	}
}
