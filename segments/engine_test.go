package segments_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/liftlab/lift/segments"
)

var t0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

const (
	highIntent = `{"event":"product_view","count_gte":3,"within":"10m"}`
	cartRule   = `{"sequence":[{"event":"add_to_cart"}],"absent":{"event":"purchase","within":"30m"}}`
)

// harness feeds an engine events with increasing offsets and records its changes.
type harness struct {
	t       *testing.T
	eng     *segments.Engine
	offset  int64
	changes []segments.Change
}

func newHarness(t *testing.T, defs ...segments.Definition) *harness {
	t.Helper()
	h := &harness{t: t}
	eng, err := segments.NewEngine(defs, segments.Options{
		Lateness: time.Minute,
		OnChange: func(c segments.Change) { h.changes = append(h.changes, c) },
	})
	if err != nil {
		t.Fatal(err)
	}
	h.eng = eng
	return h
}

func def(t testing.TB, key, rule string, ttl time.Duration) segments.Definition {
	t.Helper()
	r, err := segments.ParseRuleJSON([]byte(rule))
	if err != nil {
		t.Fatalf("ParseRuleJSON(%s): %v", rule, err)
	}
	return segments.Definition{Key: key, Rule: r, TTL: ttl}
}

// send processes an event of user at t0+at; props is optional JSON.
func (h *harness) send(userID, typ string, at time.Duration, value float64, props ...string) {
	h.offset++
	ev := segments.Event{Offset: h.offset, UserID: userID, Type: typ, Time: t0.Add(at), Value: value}
	if len(props) > 0 {
		ev.Properties = json.RawMessage(props[0])
	}
	h.eng.Process(ev)
}

// advance moves the watermark to t0+at−lateness with another user's event.
func (h *harness) advance(at time.Duration) { h.send("clock", "page_view", at, 0) }

func (h *harness) want(want ...segments.Change) {
	h.t.Helper()
	if diff := cmp.Diff(want, h.changes); diff != "" {
		h.t.Errorf("changes (-want +got):\n%s", diff)
	}
	h.changes = nil
}

func enter(userID, seg string, at, expiry time.Duration) segments.Change {
	c := segments.Change{Kind: segments.Enter, UserID: userID, Segment: seg, At: t0.Add(at)}
	if expiry >= 0 {
		c.Expiry = t0.Add(expiry)
	}
	return c
}

func exit(userID, seg string, at time.Duration) segments.Change {
	return segments.Change{Kind: segments.Exit, UserID: userID, Segment: seg, At: t0.Add(at)}
}

func TestHighIntent(t *testing.T) {
	const m = time.Minute
	seg := func(t *testing.T) *harness {
		return newHarness(t, def(t, "high-intent", highIntent, 5*m))
	}
	t.Run("three views enter", func(t *testing.T) {
		h := seg(t)
		h.send("u1", "product_view", 0, 0)
		h.send("u1", "product_view", 1*m, 0)
		h.want()
		h.send("u1", "product_view", 2*m, 0)
		// Holds until the first view leaves the window at 10m, then 5m of TTL.
		h.want(enter("u1", "high-intent", 2*m, 15*m))
	})
	t.Run("two views do not", func(t *testing.T) {
		h := seg(t)
		h.send("u1", "product_view", 0, 0)
		h.send("u1", "product_view", 1*m, 0)
		h.advance(time.Hour)
		h.want()
	})
	t.Run("three views over 15 minutes do not", func(t *testing.T) {
		h := seg(t)
		h.send("u1", "product_view", 0, 0)
		h.send("u1", "product_view", 7*m+30*time.Second, 0)
		h.send("u1", "product_view", 15*m, 0)
		h.advance(time.Hour)
		h.want()
	})
	t.Run("views 30 minutes older than the watermark are late", func(t *testing.T) {
		h := seg(t)
		h.advance(61 * m) // watermark 60m
		for i := range 3 {
			h.send("u1", "product_view", 30*m+time.Duration(i)*time.Second, 0)
		}
		h.want()
		if s := h.eng.Stats(); s.Late != 3 || s.Users != 0 {
			t.Errorf("stats = %+v, want 3 late events and no user state", s)
		}
	})
	t.Run("views 30 minutes old when received are late on a fresh engine", func(t *testing.T) {
		h := seg(t)
		for i := range 3 {
			h.offset++
			h.eng.Process(segments.Event{Offset: h.offset, UserID: "u1", Type: "product_view",
				Time: t0.Add(time.Duration(i) * time.Second), ReceivedAt: t0.Add(30 * m)})
		}
		h.want()
		if s := h.eng.Stats(); s.Late != 3 {
			t.Errorf("late = %d, want 3", s.Late)
		}
	})
	t.Run("out of order within lateness", func(t *testing.T) {
		h := seg(t)
		h.advance(10 * m) // watermark 9m
		h.send("u1", "product_view", 9*m+30*time.Second, 0)
		h.send("u1", "product_view", 9*m+10*time.Second, 0)
		h.want()
		h.send("u1", "product_view", 9*m+50*time.Second, 0)
		h.want(enter("u1", "high-intent", 9*m+50*time.Second, 19*m+10*time.Second+5*m))
		if s := h.eng.Stats(); s.Late != 0 {
			t.Errorf("late = %d, want 0", s.Late)
		}
	})
	t.Run("window expiry then ttl exit", func(t *testing.T) {
		h := seg(t)
		h.send("u1", "product_view", 0, 0)
		h.send("u1", "product_view", 1*m, 0)
		h.send("u1", "product_view", 2*m, 0)
		h.send("u1", "product_view", 9*m, 0) // now holds until 1m+10m
		h.want(enter("u1", "high-intent", 2*m, 15*m))
		h.advance(17 * m) // watermark 16m: TTL ends exactly now
		h.want(exit("u1", "high-intent", 16*m))
		h.advance(time.Hour)
		if s := h.eng.Stats(); s.Users != 0 || s.Entries != 0 {
			t.Errorf("stats = %+v, want every user evicted", s)
		}
	})
	t.Run("views during ttl keep the member in", func(t *testing.T) {
		h := seg(t)
		for i := range 3 {
			h.send("u1", "product_view", time.Duration(i)*m, 0)
		}
		h.advance(12 * m) // rule stopped at 10m; TTL runs to 15m
		for i := range 3 {
			h.send("u1", "product_view", 13*m+time.Duration(i)*time.Second, 0)
		}
		h.advance(20 * m)
		h.want(enter("u1", "high-intent", 2*m, 15*m))
		h.advance(30 * m)
		h.want(exit("u1", "high-intent", 13*m+10*m+5*m))
	})
	t.Run("tick expires idle members", func(t *testing.T) {
		h := seg(t)
		for i := range 3 {
			h.send("u1", "product_view", time.Duration(i)*m, 0)
		}
		h.want(enter("u1", "high-intent", 2*m, 15*m))
		now := t0.Add(30 * m)
		h.eng.Tick(now) // events arrived since the last tick: busy
		h.eng.Tick(now.Add(30 * time.Second))
		h.want()
		h.eng.Tick(now.Add(m)) // idle for IdleAfter: watermark = clock − lateness
		h.want(exit("u1", "high-intent", 15*m))
		if got := h.eng.Watermark(); !got.Equal(now) {
			t.Errorf("watermark = %v, want %v", got, now)
		}
		// A backlog being replayed keeps the engine busy, so its event times
		// are not overtaken by the clock.
		h.send("u2", "product_view", 31*m, 0)
		h.eng.Tick(now.Add(10 * m))
		if got := h.eng.Watermark(); !got.Equal(now) {
			t.Errorf("watermark after a busy tick = %v, want %v", got, now)
		}
	})
}

func TestCartAbandonment(t *testing.T) {
	const m = time.Minute
	seg := func(t *testing.T) *harness {
		return newHarness(t, def(t, "cart", cartRule, 0))
	}
	t.Run("no purchase for 30 minutes enters, a purchase leaves", func(t *testing.T) {
		h := seg(t)
		h.send("u1", "add_to_cart", 0, 0)
		h.advance(30 * m)
		h.want() // watermark 29m: a purchase may still arrive
		h.advance(32 * m)
		h.want(enter("u1", "cart", 30*m, 7*24*time.Hour))
		h.send("u1", "purchase", 40*m, 20)
		h.want(exit("u1", "cart", 40*m))
	})
	t.Run("purchase within 30 minutes", func(t *testing.T) {
		h := seg(t)
		h.send("u1", "add_to_cart", 0, 0)
		h.send("u1", "purchase", 20*m, 20)
		h.advance(2 * time.Hour)
		h.want()
	})
	t.Run("late purchase within lateness", func(t *testing.T) {
		h := seg(t)
		h.send("u1", "add_to_cart", 0, 0)
		h.advance(30*m + 30*time.Second) // watermark 29m30s
		h.send("u1", "purchase", 29*m+50*time.Second, 20)
		h.advance(2 * time.Hour)
		h.want()
	})
	t.Run("new cart after purchase", func(t *testing.T) {
		h := seg(t)
		h.send("u1", "add_to_cart", 0, 0)
		h.send("u1", "purchase", 5*m, 20)
		h.send("u1", "add_to_cart", 10*m, 0)
		h.advance(45 * m)
		h.want(enter("u1", "cart", 40*m, 10*m+7*24*time.Hour))
	})
	t.Run("sequence leaves its window", func(t *testing.T) {
		h := newHarness(t, def(t, "cart", `{"sequence":[{"event":"add_to_cart"}],"within":"2h","absent":{"event":"purchase","within":"30m"}}`, 0))
		h.send("u1", "add_to_cart", 0, 0)
		h.advance(3 * time.Hour)
		h.want(enter("u1", "cart", 30*m, 2*time.Hour), exit("u1", "cart", 2*time.Hour))
	})
}

func TestSequenceOrder(t *testing.T) {
	const m = time.Minute
	rule := `{"sequence":[{"event":"product_view","where":{"category":"shoes"}},{"event":"add_to_cart"}],"within":"1h"}`
	h := newHarness(t, def(t, "shoe-cart", rule, 0))
	h.send("u1", "add_to_cart", 0, 0)
	h.send("u1", "product_view", 1*m, 0, `{"category":"shoes"}`)
	h.send("u2", "product_view", 1*m, 0, `{"category":"hats"}`)
	h.send("u2", "add_to_cart", 2*m, 0)
	h.want()
	h.send("u1", "add_to_cart", 3*m, 0)
	h.want(enter("u1", "shoe-cart", 3*m, 61*m))
	h.advance(2 * time.Hour)
	h.want(exit("u1", "shoe-cart", 61*m))
}

func TestCombinations(t *testing.T) {
	const m = time.Minute
	views := `{"event":"product_view","count_gte":2,"within":"10m"}`
	buyer := `{"event":"purchase","within":"168h"}`
	h := newHarness(t,
		def(t, "both", `{"and":[`+views+`,`+buyer+`]}`, 0),
		def(t, "either", `{"or":[`+views+`,`+buyer+`]}`, 0),
		def(t, "big-spender", `{"event":"purchase","sum_gte":100,"within":"24h"}`, 0),
		def(t, "shoes", `{"event":"product_view","where":{"category":{"$in":["shoes","boots"]}},"within":"1h"}`, 0),
	)
	h.send("u1", "product_view", 0, 0, `{"category":"hats"}`)
	h.want()
	h.send("u1", "product_view", 1*m, 0, `{"category":"boots"}`)
	h.want(enter("u1", "either", 1*m, 10*m), enter("u1", "shoes", 1*m, 61*m))
	h.send("u1", "purchase", 2*m, 60)
	h.want(enter("u1", "both", 2*m, 10*m))
	h.send("u1", "purchase", 3*m, 50)
	h.want(enter("u1", "big-spender", 3*m, 2*m+24*time.Hour))
	h.advance(20 * m)
	h.want(exit("u1", "both", 10*m))
	h.advance(25 * time.Hour)
	h.want(exit("u1", "shoes", 61*m), exit("u1", "big-spender", 2*m+24*time.Hour))
}

func TestFutureClockDoesNotMakeOthersLate(t *testing.T) {
	h := newHarness(t, def(t, "high-intent", highIntent, 0))
	// Stamped 5 minutes ahead of its receive time: it counts at its own time but
	// advances the watermark only to its receive time.
	h.offset++
	h.eng.Process(segments.Event{Offset: h.offset, UserID: "skewed", Type: "product_view",
		Time: t0.Add(5 * time.Minute), ReceivedAt: t0})
	for i := range 3 {
		h.send("u1", "product_view", time.Duration(i)*time.Second, 0)
	}
	h.want(enter("u1", "high-intent", 2*time.Second, 10*time.Minute))
	if got, want := h.eng.Watermark(), t0.Add(2*time.Second-time.Minute); !got.Equal(want) {
		t.Errorf("watermark = %v, want %v", got, want)
	}
	var members []string
	for m := range h.eng.Members() {
		members = append(members, m.UserID+" "+m.Segment+" "+m.Since.Format(time.TimeOnly))
	}
	if diff := cmp.Diff([]string{"u1 high-intent 12:00:02"}, members); diff != "" {
		t.Errorf("members (-want +got):\n%s", diff)
	}
}

func TestDuplicateOffsetsAreSkipped(t *testing.T) {
	h := newHarness(t, def(t, "high-intent", highIntent, 0))
	for range 3 {
		h.eng.Process(segments.Event{Offset: 7, UserID: "u1", Type: "product_view", Time: t0})
	}
	h.want()
	if s := h.eng.Stats(); s.Duplicates != 2 || s.Entries != 1 || s.Offset != 7 {
		t.Errorf("stats = %+v, want 2 duplicates, 1 entry, offset 7", s)
	}
}

func TestRebuildThenLive(t *testing.T) {
	h := newHarness(t, def(t, "high-intent", highIntent, 0))
	h.send("u1", "product_view", 0, 0) // history, offsets 1 and 2
	h.send("u1", "product_view", time.Second, 0)
	h.eng.SetOffset(999) // the live stream resumes at 1000
	h.offset = 500
	h.send("u1", "product_view", 2*time.Second, 0)
	h.want()
	h.offset = 999
	h.send("u1", "product_view", 3*time.Second, 0)
	h.want(enter("u1", "high-intent", 3*time.Second, 10*time.Minute))
}

func TestNewEngineRejectsBadDefinitions(t *testing.T) {
	good := def(t, "a", highIntent, 0)
	for name, defs := range map[string][]segments.Definition{
		"repeated key": {good, good},
		"empty key":    {{Rule: good.Rule}},
		"nil rule":     {{Key: "b"}},
		"negative ttl": {{Key: "b", Rule: good.Rule, TTL: -1}},
	} {
		if _, err := segments.NewEngine(defs, segments.Options{}); err == nil {
			t.Errorf("%s: NewEngine succeeded", name)
		}
	}
}
