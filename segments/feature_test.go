package segments_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/liftlab/lift/segments"
)

func TestParseFeature(t *testing.T) {
	valid := []string{
		`{"kind":"count","event":"product_view","within":"10m"}`,
		`{"kind":"sum","event":"purchase","where":{"currency":"EUR"},"within":"24h"}`,
		`{"kind":"distinct","event":["product_view","add_to_cart"],"property":"sku","within":"1h"}`,
		`{"kind":"last","event":"product_view","property":"product.category","within":"720h"}`,
		`{"kind":"last_n","event":"product_view","property":"sku","n":20,"within":"24h"}`,
	}
	for _, v := range valid {
		if _, err := segments.ParseFeatureJSON([]byte(v)); err != nil {
			t.Errorf("ParseFeatureJSON(%s): %v", v, err)
		}
	}
	invalid := []struct{ def, path string }{
		{`[]`, ""},
		{`{"kind":"median","event":"a","within":"1m"}`, "kind"},
		{`{"kind":"count","within":"1m"}`, "event"},
		{`{"kind":"count","event":[],"within":"1m"}`, "event"},
		{`{"kind":"count","event":["a","a"],"within":"1m"}`, "event"},
		{`{"kind":"count","event":["a",""],"within":"1m"}`, "event"},
		{`{"kind":"count","event":"a"}`, "within"},
		{`{"kind":"count","event":"a","within":"31d"}`, "within"},
		{`{"kind":"count","event":"a","within":"1m","property":"sku"}`, "property"},
		{`{"kind":"distinct","event":"a","within":"1m"}`, "property"},
		{`{"kind":"last","event":"a","within":"1m","property":"a..b"}`, "property"},
		{`{"kind":"last_n","event":"a","within":"1m","property":"sku"}`, "n"},
		{`{"kind":"last_n","event":"a","within":"1m","property":"sku","n":101}`, "n"},
		{`{"kind":"last","event":"a","within":"1m","property":"sku","n":3}`, "n"},
		{`{"kind":"count","event":"a","within":"1m","where":{"price":{"$gtt":3}}}`, "where.price.$gtt"},
		{`{"kind":"count","event":"a","within":"1m","windw":"1m"}`, "windw"},
	}
	for _, tt := range invalid {
		_, err := segments.ParseFeatureJSON([]byte(tt.def))
		var fe *segments.FeatureError
		if !errors.As(err, &fe) || fe.Path != tt.path {
			t.Errorf("ParseFeatureJSON(%s) = %v, want a FeatureError at %q", tt.def, err, tt.path)
		}
	}
}

func feature(t testing.TB, key, def string) segments.Definition {
	t.Helper()
	f, err := segments.ParseFeatureJSON([]byte(def))
	if err != nil {
		t.Fatalf("ParseFeatureJSON(%s): %v", def, err)
	}
	return segments.Definition{Key: segments.FeaturePrefix + key, Feature: f}
}

// featureHarness feeds an engine and keeps the values it reports.
type featureHarness struct {
	*harness
	values  map[string]map[string]string // user → feature → JSON, "" for the default
	changes []segments.FeatureChange
}

func newFeatureHarness(t *testing.T, defs ...segments.Definition) *featureHarness {
	t.Helper()
	h := &featureHarness{harness: &harness{t: t}, values: map[string]map[string]string{}}
	eng, err := segments.NewEngine(defs, segments.Options{Lateness: time.Minute, OnFeature: h.record,
		OnChange: func(c segments.Change) { h.harness.changes = append(h.harness.changes, c) }})
	if err != nil {
		t.Fatal(err)
	}
	h.eng = eng
	return h
}

func (h *featureHarness) record(c segments.FeatureChange) {
	h.changes = append(h.changes, c)
	if h.values[c.UserID] == nil {
		h.values[c.UserID] = map[string]string{}
	}
	h.values[c.UserID][strings.TrimPrefix(c.Feature, segments.FeaturePrefix)] = string(c.Value)
}

func (h *featureHarness) wantValue(user, feature, want string) {
	h.t.Helper()
	if got := h.values[user][feature]; got != want {
		h.t.Errorf("%s of %s = %q, want %q", feature, user, got, want)
	}
}

func TestFeatureKinds(t *testing.T) {
	const m = time.Minute
	h := newFeatureHarness(t,
		feature(t, "views", `{"kind":"count","event":"product_view","within":"10m"}`),
		feature(t, "spend", `{"kind":"sum","event":"purchase","within":"1h"}`),
		feature(t, "skus", `{"kind":"distinct","event":["product_view","add_to_cart"],"property":"sku","within":"30m"}`),
		feature(t, "category", `{"kind":"last","event":"product_view","property":"product.category","within":"1h"}`),
		feature(t, "recent", `{"kind":"last_n","event":"product_view","property":"sku","n":3,"within":"20m"}`),
		def(t, "high-intent", highIntent, 0),
	)
	view := func(at time.Duration, sku, cat string) {
		h.send("u1", "product_view", at, 0, fmt.Sprintf(`{"sku":%q,"product":{"category":%q}}`, sku, cat))
	}
	view(0, "a", "shoes")
	view(1*m, "b", "hats")
	h.send("u1", "add_to_cart", 2*m, 0, `{"sku":"c"}`)
	view(3*m, "a", "shoes")
	h.send("u1", "purchase", 4*m, 12.5)
	h.send("u1", "purchase", 5*m, 0.25)
	view(6*m, "d", "socks")
	h.wantValue("u1", "views", "4")
	h.wantValue("u1", "spend", "12.75")
	h.wantValue("u1", "skus", "4") // a, b, c, d: a twice
	h.wantValue("u1", "category", `"socks"`)
	h.wantValue("u1", "recent", `["d","a","b"]`) // newest first, a once
	if len(h.harness.changes) != 1 {
		t.Errorf("segment changes = %v, want high-intent entered", h.harness.changes)
	}

	// An out-of-order view within the lateness counts, in its place.
	view(5*m+30*time.Second, "e", "hats")
	h.wantValue("u1", "views", "5")
	h.wantValue("u1", "category", `"socks"`) // e is older than d
	h.wantValue("u1", "recent", `["d","e","a"]`)

	// Values fall as events leave the window, once the watermark passes.
	h.advance(11*m + m) // watermark 11m: the views at 0 and 1m have left
	h.wantValue("u1", "views", "3")
	h.advance(50 * m) // watermark 49m: the whole count window and recent window
	h.wantValue("u1", "views", "")
	h.wantValue("u1", "recent", "")
	h.wantValue("u1", "skus", "") // 30m: the last sku event was at 6m
	h.wantValue("u1", "spend", "12.75")
	h.advance(2 * time.Hour)
	h.wantValue("u1", "spend", "")
	h.wantValue("u1", "category", "")
	if s := h.eng.Stats(); s.Users != 0 {
		t.Errorf("users = %d, want every user evicted", s.Users)
	}
	// An event without the property counts nowhere that needs it.
	h.send("u2", "product_view", 3*time.Hour, 0, `{"price":3}`)
	h.wantValue("u2", "views", "1")
	h.wantValue("u2", "recent", "")
	// Late events count nowhere.
	h.send("u3", "product_view", 2*time.Hour, 0, `{"sku":"x"}`)
	h.wantValue("u3", "views", "")
}

// A feature reports only changes: a view of the same product again changes the count
// but not the distinct count.
func TestFeatureReportsChangesOnly(t *testing.T) {
	h := newFeatureHarness(t,
		feature(t, "views", `{"kind":"count","event":"product_view","within":"10m"}`),
		feature(t, "skus", `{"kind":"distinct","event":"product_view","property":"sku","within":"10m"}`))
	h.send("u1", "product_view", 0, 0, `{"sku":"a"}`)
	h.send("u1", "product_view", time.Second, 0, `{"sku":"a"}`)
	var got []string
	for _, c := range h.changes {
		got = append(got, strings.TrimPrefix(c.Feature, segments.FeaturePrefix)+"="+string(c.Value))
	}
	if want := []string{"views=1", "skus=1", "views=2"}; !slices.Equal(got, want) {
		t.Errorf("changes = %v, want %v", got, want)
	}
}

// Features agree with a direct computation over the events (a ground truth written
// plainly in Go) for a stream with out-of-order and late events, across a restart
// from a checkpoint, a compaction of the value table and a rebuild from stored events.
func TestFeaturesAgreeWithGroundTruth(t *testing.T) {
	defs := map[string]string{
		"views":    `{"kind":"count","event":"product_view","within":"10m"}`,
		"cheap":    `{"kind":"count","event":"product_view","where":{"price":{"$lt":50}},"within":"5m"}`,
		"spend":    `{"kind":"sum","event":"purchase","within":"1h"}`,
		"skus":     `{"kind":"distinct","event":["product_view","add_to_cart"],"property":"sku","within":"30m"}`,
		"category": `{"kind":"last","event":"product_view","property":"category","within":"15m"}`,
		"recent":   `{"kind":"last_n","event":["product_view","add_to_cart"],"property":"sku","n":5,"within":"20m"}`,
	}
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range defs {
			if !yield(k) {
				return
			}
		}
	})
	var definitions []segments.Definition
	for _, k := range keys {
		definitions = append(definitions, feature(t, k, defs[k]))
	}
	// A behavioural segment beside them, so slots and state are shared.
	definitions = append(definitions, def(t, "high-intent", highIntent, time.Minute))
	parsed := map[string]*segments.Feature{}
	for _, d := range definitions {
		if d.Feature != nil {
			parsed[strings.TrimPrefix(d.Key, segments.FeaturePrefix)] = d.Feature
		}
	}

	const lateness = time.Minute
	reported := map[string]map[string]string{}
	onFeature := func(c segments.FeatureChange) {
		if reported[c.UserID] == nil {
			reported[c.UserID] = map[string]string{}
		}
		reported[c.UserID][strings.TrimPrefix(c.Feature, segments.FeaturePrefix)] = string(c.Value)
	}
	newEngine := func() *segments.Engine {
		eng, err := segments.NewEngine(definitions, segments.Options{Lateness: lateness, OnFeature: onFeature, Now: func() time.Time { return t0.Add(48 * time.Hour) }})
		if err != nil {
			t.Fatal(err)
		}
		return eng
	}
	eng := newEngine()

	rng := rand.New(rand.NewPCG(24, 24))
	type event struct {
		user, typ string
		at        int64 // ms
		value     float64
		sku, cat  string
		price     int
	}
	var accepted []event
	var maxTime int64 = -1 << 62
	clock := t0.UnixMilli()
	used := map[int64]bool{}

	// truth computes a user's feature at time tau (ms) from the accepted events.
	truth := func(user, key string, tau int64) string {
		var def map[string]any
		_ = json.Unmarshal([]byte(defs[key]), &def)
		within, _ := time.ParseDuration(def["within"].(string))
		var in []event
		for _, e := range accepted {
			if e.user != user || e.at <= tau-within.Milliseconds() || e.at > tau {
				continue
			}
			types := parsed[key].EventTypes()
			if !slices.Contains(types, e.typ) {
				continue
			}
			if key == "cheap" && e.price >= 50 {
				continue
			}
			in = append(in, e)
		}
		slices.SortFunc(in, func(a, b event) int { return int(a.at - b.at) })
		switch def["kind"] {
		case "count":
			if len(in) == 0 {
				return ""
			}
			return strconv.Itoa(len(in))
		case "sum":
			if len(in) == 0 {
				return ""
			}
			sum := 0.0
			for _, e := range in {
				sum += e.value
			}
			return strconv.FormatFloat(sum, 'g', -1, 64)
		case "distinct":
			seen := map[string]bool{}
			for _, e := range in {
				seen[e.sku] = true
			}
			if len(seen) == 0 {
				return ""
			}
			return strconv.Itoa(len(seen))
		case "last":
			if len(in) == 0 {
				return ""
			}
			return strconv.Quote(in[len(in)-1].cat)
		}
		var out []string
		for i := len(in) - 1; i >= 0 && len(out) < 5; i-- {
			if !slices.Contains(out, strconv.Quote(in[i].sku)) {
				out = append(out, strconv.Quote(in[i].sku))
			}
		}
		if len(out) == 0 {
			return ""
		}
		return "[" + joinComma(out) + "]"
	}
	check := func(when string) {
		t.Helper()
		wm := maxTime - lateness.Milliseconds()
		// A user's clock is the newest event of theirs the engine reads (page views it
		// reads nowhere); the watermark moves it on through the deadlines before it.
		userMax := map[string]int64{}
		for _, e := range accepted {
			if e.typ != "page_view" {
				userMax[e.user] = max(userMax[e.user], e.at)
			}
		}
		mismatches := 0
		for user, um := range userMax {
			tau := max(um, wm)
			for _, k := range keys {
				if got, want := reported[user][k], truth(user, k, tau); got != want && mismatches < 10 {
					mismatches++
					t.Errorf("%s: %s of %s = %q, want %q at %v", when, k, user, got, want, time.Duration(tau-t0.UnixMilli())*time.Millisecond)
				}
			}
		}
	}

	var offset int64
	for i := range 6000 {
		clock += int64(rng.IntN(400))
		at := clock
		if rng.IntN(6) == 0 {
			at -= int64(rng.IntN(90_000)) // out of order; a third of these late
		}
		for used[at] {
			at++ // distinct times: ties have no single right order
		}
		used[at] = true
		e := event{user: fmt.Sprintf("u%d", rng.IntN(25)), at: at}
		switch p := rng.IntN(100); {
		case p < 55:
			e.typ, e.sku, e.cat, e.price = "product_view", fmt.Sprintf("sku-%d", rng.IntN(40)), []string{"shoes", "hats", "socks"}[rng.IntN(3)], rng.IntN(100)
		case p < 70:
			e.typ, e.sku = "add_to_cart", fmt.Sprintf("sku-%d", rng.IntN(40))
		case p < 80:
			e.typ, e.value = "purchase", float64(rng.IntN(400))/4
		default:
			e.typ = "page_view"
		}
		offset++
		props := fmt.Sprintf(`{"sku":%q,"category":%q,"price":%d}`, e.sku, e.cat, e.price)
		if e.sku == "" {
			props = `{}`
		}
		eng.Process(segments.Event{Offset: offset, UserID: e.user, Type: e.typ, Time: time.UnixMilli(e.at).UTC(), Value: e.value, Properties: json.RawMessage(props)})
		if e.at >= maxTime-lateness.Milliseconds() {
			accepted = append(accepted, e)
		}
		maxTime = max(maxTime, e.at)
		switch {
		case i%500 == 499:
			check(fmt.Sprintf("after %d events", i+1))
		case i == 2500:
			// A restart from a checkpoint: the values reported after it are the
			// uninterrupted run's.
			var buf bytes.Buffer
			if err := eng.Snapshot(&buf); err != nil {
				t.Fatal(err)
			}
			eng = newEngine()
			if res, err := eng.Restore(&buf); err != nil || len(res.Missing) > 0 {
				t.Fatalf("restore: %+v, %v", res, err)
			}
		case i%1000 == 300:
			segments.CompactStrings(eng)
		}
	}
	check("at the end")
	// Then the whole window passes: every value back to its default.
	offset++
	eng.Process(segments.Event{Offset: offset, UserID: "clock", Type: "page_view", Time: time.UnixMilli(clock + 3*3600_000).UTC()})
	maxTime = clock + 3*3600_000
	check("after the windows")
}

func joinComma(s []string) string {
	var b bytes.Buffer
	for i, x := range s {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(x)
	}
	return b.String()
}

// A feature added later starts from stored events (a rebuild) and then agrees with an
// engine that had it all along.
func TestFeatureRebuild(t *testing.T) {
	recent := `{"kind":"last_n","event":"product_view","property":"sku","n":3,"within":"1h"}`
	full := newFeatureHarness(t, feature(t, "recent", recent), feature(t, "skus", `{"kind":"distinct","event":"product_view","property":"sku","within":"1h"}`))
	live := newFeatureHarness(t, feature(t, "recent", recent), feature(t, "skus", `{"kind":"distinct","event":"product_view","property":"sku","within":"1h"}`))
	history, err := segments.NewEngine([]segments.Definition{feature(t, "recent", recent), feature(t, "skus", `{"kind":"distinct","event":"product_view","property":"sku","within":"1h"}`)}, segments.Options{Lateness: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	cut := t0.Add(10 * time.Minute)
	live.eng.StartRebuild([]string{"features.recent", "features.skus"}, cut)
	var hoff int64
	for i := range 40 {
		at := time.Duration(i) * 30 * time.Second
		sku := fmt.Sprintf(`{"sku":"s%d"}`, i%7)
		ev := segments.Event{UserID: "u1", Type: "product_view", Time: t0.Add(at), ReceivedAt: t0.Add(at), Properties: json.RawMessage(sku)}
		full.offset++
		ev.Offset = full.offset
		full.eng.Process(ev)
		if ev.ReceivedAt.Before(cut) {
			hoff++
			ev.Offset = hoff
			history.Process(ev)
		}
		// The live input was read from a little before the cut: stored events
		// arrive again and are skipped for the rebuilding features.
		if !ev.ReceivedAt.Before(cut.Add(-time.Minute)) {
			live.offset++
			ev.Offset = live.offset
			live.eng.Process(ev)
		}
	}
	if done := live.eng.Merge(history); len(done) != 2 {
		t.Fatalf("merged %v", done)
	}
	got := map[string]string{}
	for c := range live.eng.FeatureValues() {
		got[c.Feature] = string(c.Value)
	}
	want := map[string]string{}
	for c := range full.eng.FeatureValues() {
		want[c.Feature] = string(c.Value)
	}
	if diff := cmp.Diff(want, got); diff != "" || len(want) != 2 {
		t.Errorf("values after the rebuild (-uninterrupted +rebuilt):\n%s", diff)
	}
	// And the next event changes both alike.
	for _, h := range []*featureHarness{full, live} {
		h.send("u1", "product_view", 20*time.Minute+time.Second, 0, `{"sku":"new"}`)
	}
	full.wantValue("u1", "recent", live.values["u1"]["recent"])
	full.wantValue("u1", "recent", `["new","s4","s3"]`)
}
