package dashboard

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/liftlab/lift/experiments"
	"github.com/liftlab/lift/experiments/stats"
	"github.com/liftlab/lift/internal/testenv"
)

// growingReader is an event store that gains 100 users between computations and
// takes as long as a ClickHouse query (longer than the list waits).
type growingReader struct {
	mu    sync.Mutex
	calls int
}

func (r *growingReader) Results(ctx context.Context, key string) (experiments.Results, error) {
	time.Sleep(40 * time.Millisecond)
	r.mu.Lock()
	r.calls++
	n := float64(100 * r.calls)
	r.mu.Unlock()
	lift := 0.1
	return experiments.Results{Experiment: key, Users: n, Metrics: []experiments.MetricResult{{Key: "goal", Role: "goal", Event: "purchase", Kind: "conversion",
		Variants: []stats.VariantResult{{Key: "control", Users: n / 2}, {Key: "bold", Users: n / 2, Lift: &lift}}}}}, nil
}

func (r *growingReader) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls
}

// fakeConfig holds one running experiment and its audit log.
type fakeConfig struct {
	experiments.Manager
	doc   json.RawMessage
	audit []experiments.AuditEntry
}

func (f fakeConfig) List(context.Context, experiments.Kind) ([]json.RawMessage, error) {
	return []json.RawMessage{f.doc}, nil
}

func (f fakeConfig) Audit(context.Context, experiments.AuditQuery) ([]experiments.AuditEntry, error) {
	return f.audit, nil
}

// TestListAndPageShowOneComputation: the experiments list showed what someone's
// previous visit computed (minutes old) while the experiment page computed afresh. With
// the background refresh both read the same recent computation, whenever they are
// looked at; the list names the best variant by its name and says how long a
// just-started experiment has run in minutes.
func TestListAndPageShowOneComputation(t *testing.T) {
	started := time.Now().Add(-5 * time.Minute)
	doc := json.RawMessage(`{"key":"hero","name":"Hero","status":"running","goal":{"event":"purchase","kind":"conversion"},
		"variants":[{"key":"control","weight":0.5},{"key":"bold","name":"Bold banner","weight":0.5}]}`)
	reader := &growingReader{}
	d := New(Deps{Log: slog.New(slog.DiscardHandler), Results: reader, Config: fakeConfig{doc: doc, audit: []experiments.AuditEntry{
		{At: started.Add(time.Minute), Action: "update", Before: json.RawMessage(`{"status":"running"}`), After: json.RawMessage(`{"status":"running"}`)},
		{At: started, Action: "create", After: json.RawMessage(`{"status":"running"}`)},
	}}})
	var clock atomic.Int64 // the cache's clock, read by its background computations
	clock.Store(time.Now().UnixNano())
	d.cache.now = func() time.Time { return time.Unix(0, clock.Load()) }
	var e experiments.Experiment
	if err := json.Unmarshal(doc, &e); err != nil {
		t.Fatal(err)
	}
	rows := []experimentRow{{Key: "hero", Status: "running", HasGoal: true, VariantNames: variantNames(&e)}}
	ctx := t.Context()

	// Someone opens the list; the first computation lands in the background.
	d.cache.headlines(ctx, rows)
	testenv.Poll(2*time.Second, func() bool { return reader.count() >= 1 })
	time.Sleep(10 * time.Millisecond)
	// Five minutes pass while data keeps arriving; the background refresh ran.
	clock.Add(int64(5 * time.Minute))
	d.refreshResults(ctx)
	calls := reader.count()

	heads := d.cache.headlines(ctx, rows)
	d.describeHeadlines(ctx, rows, heads)
	page := d.experimentResults(ctx, &e, false)
	h, ok := heads["hero"]
	switch {
	case !ok || page.View == nil:
		t.Fatalf("list %+v, page %+v: want results on both", heads, page)
	case h.Users != page.View.Users || h.Users != count(float64(100*calls)):
		t.Errorf("list shows %s users, page %s: want both %s, the newest computation", h.Users, page.View.Users, count(float64(100*calls)))
	case reader.count() != calls:
		t.Errorf("the page computed again (%d computations, want %d): it must read the list's", reader.count(), calls)
	}
	if h.Variant != "Bold banner" {
		t.Errorf("best variant shown as %q, want its name", h.Variant)
	}
	if h.Days != "5 minutes" {
		t.Errorf("running for %q, want 5 minutes", h.Days)
	}
}

func TestRunningFor(t *testing.T) {
	t.Parallel()
	for d, want := range map[time.Duration]string{
		20 * time.Second: "under a minute", time.Minute: "1 minute", 5 * time.Minute: "5 minutes",
		3*time.Hour + 59*time.Minute: "3 hours", 47 * time.Hour: "47 hours", 50 * time.Hour: "2 days",
	} {
		if got := runningFor(d); got != want {
			t.Errorf("runningFor(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestHumanField(t *testing.T) {
	t.Parallel()
	for path, want := range map[string]string{
		"variants[1].value": "Variant 2 value", "goal.event": "Goal event", "rules[0].rollout": "Rule 1 rollout",
		"targeting.country.$in": "Targeting (country.$in)", "rules[2].condition.a.$regex": "Rule 3 condition (a.$regex)",
		"bandit.min_weight": "Bandit minimum weight", "key": "Key", "segments[0]": "Segment 1",
	} {
		if got := humanField(path); got != want {
			t.Errorf("humanField(%q) = %q, want %q", path, got, want)
		}
	}
	errs := fieldErrors{{Field: "variants", Message: "weights must add up"}, {Field: "variants[1].value", Message: "is not valid JSON"},
		{Field: "variants[0].name", Message: "is too long"}}
	if got := errs.Rest("variants", "key", "weight", "value"); got != "weights must add up; Variant 1 name: is too long" {
		t.Errorf("Rest = %q: the value's message belongs to its own field only", got)
	}
	for typed, want := range map[string]string{
		"green": `is not valid JSON: text needs double quotes, as in "green"`, `{"a":`: "is not valid JSON (unexpected end of JSON input)",
		`"ok"`: "", "12": "",
	} {
		if got := jsonProblem(typed); got != want {
			t.Errorf("jsonProblem(%q) = %q, want %q", typed, got, want)
		}
	}
}
