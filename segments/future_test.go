package segments_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/liftlab/lift/segments"
)

// year2105 is where a client's received_at put its events before the collector
// stopped believing it.
var year2105 = time.Date(2105, 6, 1, 0, 0, 0, 0, time.UTC)

// clockAt makes a harness whose engine believes it is t0+now.
func clockAt(t *testing.T, now time.Duration, defs ...segments.Definition) *harness {
	t.Helper()
	h := &harness{t: t}
	eng, err := segments.NewEngine(defs, segments.Options{
		Lateness: time.Minute, Now: func() time.Time { return t0.Add(now) },
		OnChange: func(c segments.Change) { h.changes = append(h.changes, c) },
	})
	if err != nil {
		t.Fatal(err)
	}
	h.eng = eng
	return h
}

func (h *harness) sendReceived(userID, typ string, at, received time.Time) {
	h.offset++
	h.eng.Process(segments.Event{Offset: h.offset, UserID: userID, Type: typ, Time: at, ReceivedAt: received})
}

// One user's events from 2105 (received then, or stamped then without a receive
// time) used to move the watermark of everyone on the shard to 2105: every other
// event was late from then on and nobody could enter a behavioural segment. They are
// dropped and counted; events within the skew still count.
func TestFarFutureEventMovesNoWatermark(t *testing.T) {
	h := clockAt(t, 0, def(t, "high-intent", highIntent, 0))
	h.sendReceived("mallory", "product_view", year2105, year2105)
	h.send("mallory", "product_view", 100*365*24*time.Hour, 0) // no receive time
	for i := range 3 {
		at := t0.Add(time.Duration(i) * time.Second)
		h.sendReceived("u1", "product_view", at, at)
	}
	h.want(enter("u1", "high-intent", 2*time.Second, 10*time.Minute))
	h.sendReceived("skewed", "page_view", t0.Add(4*time.Minute), t0.Add(4*time.Minute))
	s := h.eng.Stats()
	if s.Future != 2 || s.Late != 0 {
		t.Errorf("stats %+v, want 2 future events and none late", s)
	}
	// The event 4 minutes ahead moved it, within the allowed 5.
	if want := t0.Add(4*time.Minute - time.Minute); !s.Watermark.Equal(want) {
		t.Errorf("watermark %v, want %v", s.Watermark, want)
	}
	if got := h.eng.Received(); !got.Equal(t0.Add(4 * time.Minute)) {
		t.Errorf("newest receive time %v, want %v", got, t0.Add(4*time.Minute))
	}
}

// A checkpoint written while such events counted carries a watermark in 2105, which
// kept every user out of every segment across restarts. Restoring it sets the
// watermark back to the clock, drops the state of the users whose clock was in 2105
// and ends their memberships; a sound checkpoint is restored as it is.
func TestRestoreRepairsFutureCheckpoint(t *testing.T) {
	defs := []segments.Definition{def(t, "high-intent", highIntent, 0)}
	// The old engine: it believed everything (a clock past 2105 does the same here).
	old := clockAt(t, year2105.Sub(t0)+time.Hour, defs...)
	for i := range 3 {
		old.sendReceived("honest", "product_view", t0.Add(time.Duration(i)*time.Second), t0.Add(time.Duration(i)*time.Second))
	}
	for i := range 3 {
		at := year2105.Add(time.Duration(i) * time.Second)
		old.sendReceived("mallory", "product_view", at, at)
	}
	if got := old.eng.Watermark(); got.Year() != 2105 {
		t.Fatalf("the old engine's watermark is %v, want it in 2105", got)
	}
	var cp bytes.Buffer
	if err := old.eng.Snapshot(&cp); err != nil {
		t.Fatal(err)
	}

	h := clockAt(t, time.Minute, defs...)
	res, err := h.eng.Restore(bytes.NewReader(cp.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if !res.Clamped || !cmp.Equal(res.Future, []string{"mallory"}) {
		t.Errorf("Restore = %+v, want the watermark clamped and mallory dropped", res)
	}
	h.want(exit("mallory", "high-intent", time.Minute))
	if got, want := h.eng.Watermark(), t0; !got.Equal(want) {
		t.Errorf("watermark %v, want the clock less the lateness, %v", got, want)
	}
	if got := h.eng.Received(); !got.Equal(t0.Add(time.Minute)) {
		t.Errorf("newest receive time %v, want the clock %v", got, t0.Add(time.Minute))
	}
	// Live events count again (the old engine had expired and evicted everyone else).
	h.offset = h.eng.Offset()
	for i := range 3 {
		at := t0.Add(30*time.Second + time.Duration(i)*time.Second)
		h.sendReceived("u1", "product_view", at, at)
	}
	h.want(enter("u1", "high-intent", 32*time.Second, 10*time.Minute+30*time.Second))
	var ms []string
	for m := range h.eng.Members() {
		ms = append(ms, m.UserID)
	}
	if diff := cmp.Diff([]string{"u1"}, ms); diff != "" {
		t.Errorf("members (-want +got):\n%s", diff)
	}

	// A sound checkpoint is left as it is.
	again := clockAt(t, time.Minute, defs...)
	var sound bytes.Buffer
	if err := h.eng.Snapshot(&sound); err != nil {
		t.Fatal(err)
	}
	if res, err := again.eng.Restore(bytes.NewReader(sound.Bytes())); err != nil || res.Clamped || res.Future != nil {
		t.Errorf("Restore of a sound checkpoint = %+v, %v; want nothing repaired", res, err)
	}
	if !again.eng.Watermark().Equal(h.eng.Watermark()) {
		t.Errorf("watermark %v after restoring a sound checkpoint, want %v", again.eng.Watermark(), h.eng.Watermark())
	}
}
