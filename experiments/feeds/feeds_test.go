package feeds_test

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/liftlab/lift/bandit"
	"github.com/liftlab/lift/experiments"
	"github.com/liftlab/lift/experiments/feeds"
	"github.com/liftlab/lift/experiments/stats"
)

// config is an in-memory configuration: documents by kind and key.
type config struct {
	docs    map[experiments.Kind]map[string]string
	updates []string // "key action actor"
}

func (c *config) List(_ context.Context, kind experiments.Kind) ([]json.RawMessage, error) {
	var out []json.RawMessage
	for _, d := range c.docs[kind] {
		out = append(out, json.RawMessage(d))
	}
	return out, nil
}

func (c *config) Update(_ context.Context, kind experiments.Kind, key, action, actor string,
	change func(json.RawMessage) (json.RawMessage, error)) (json.RawMessage, error) {
	after, err := change(json.RawMessage(c.docs[kind][key]))
	if err != nil {
		return nil, err
	}
	c.docs[kind][key] = string(after)
	c.updates = append(c.updates, key+" "+action+" "+actor)
	return after, nil
}

type events struct {
	data  experiments.MetricData
	query experiments.MetricQuery
	by    experiments.Breakdown
}

func (e *events) MetricAggregates(_ context.Context, q experiments.MetricQuery, by experiments.Breakdown) (experiments.MetricData, error) {
	e.query, e.by = q, by
	return e.data, nil
}

func (e *events) LatestEvent(context.Context) (time.Time, error) { return time.Time{}, nil }

type results map[string]experiments.Results

func (r results) Results(_ context.Context, key string) (experiments.Results, error) {
	return r[key], nil
}

// TestBanditsLists: only running bandits with a goal and no winner are updated, with
// their arms, goal and bandit settings.
func TestBanditsLists(t *testing.T) {
	c := &config{docs: map[experiments.Kind]map[string]string{experiments.KindExperiment: {
		"run":    `{"key":"run","type":"bandit","status":"running","variants":[{"key":"a"},{"key":"b"}],"goal":{"event":"buy","kind":"value"},"bandit":{"per_segment":["new"],"min_weight":0.05}}`,
		"won":    `{"key":"won","type":"bandit","status":"running","variants":[{"key":"a"},{"key":"b"}],"goal":{"event":"buy"},"bandit":{"winner":"b"}}`,
		"paused": `{"key":"paused","type":"bandit","status":"paused","variants":[{"key":"a"},{"key":"b"}],"goal":{"event":"buy"}}`,
		"ab":     `{"key":"ab","status":"running","variants":[{"key":"a"},{"key":"b"}],"goal":{"event":"buy"}}`,
		"nogoal": `{"key":"nogoal","type":"bandit","status":"running","variants":[{"key":"a"},{"key":"b"}]}`,
	}}}
	specs, err := (&feeds.Bandits{Config: c}).Bandits(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(specs) != 1 {
		t.Fatalf("specs = %+v, want only %q", specs, "run")
	}
	s := specs[0]
	if s.Experiment != "run" || s.Event != "buy" || s.Goal != bandit.Value || !reflect.DeepEqual(s.Variants, []string{"a", "b"}) ||
		!reflect.DeepEqual(s.Segments, []string{"new"}) || s.MinWeight != 0.05 {
		t.Errorf("spec = %+v", s)
	}
}

// TestBanditsCounts: aggregates become one period per segment (one per day when the
// bandit discounts), arms in the spec's order, removed variants left out.
func TestBanditsCounts(t *testing.T) {
	ev := &events{data: experiments.MetricData{Arms: []experiments.ArmAggregate{
		{Variant: "b", Group: "", Users: 10, Conversions: 2},
		{Variant: "a", Group: "", Users: 20, Conversions: 3},
		{Variant: "gone", Group: "", Users: 5},
		{Variant: "a", Group: "new", Users: 7, Conversions: 1, Sum: 4, SumSq: 9},
	}}}
	b := &feeds.Bandits{Events: ev}
	spec := bandit.Spec{Experiment: "e", Event: "buy", Variants: []string{"a", "b"}}
	got, err := b.Counts(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]bandit.Period{
		"":    {{Arms: []bandit.Counts{{Exposures: 20, Conversions: 3}, {Exposures: 10, Conversions: 2}}}},
		"new": {{Arms: []bandit.Counts{{Exposures: 7, Conversions: 1, Sum: 4, SumSq: 9}, {}}}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("counts = %+v, want %+v", got, want)
	}
	if ev.by != experiments.BySegment || ev.query.Kind != "conversion" || !ev.query.KeepMultiVariant {
		t.Errorf("query = %+v by %q", ev.query, ev.by)
	}

	ev.data.Arms = []experiments.ArmAggregate{
		{Variant: "a", Day: "2026-01-02", Users: 1},
		{Variant: "a", Day: "2026-01-01", Users: 2},
	}
	spec.Decay, spec.Goal = 0.9, bandit.Value
	got, err = b.Counts(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	day := func(s string) time.Time { d, _ := time.Parse(time.DateOnly, s); return d }
	want = map[string][]bandit.Period{"": {
		{Day: day("2026-01-02"), Arms: []bandit.Counts{{Exposures: 1}, {}}},
		{Day: day("2026-01-01"), Arms: []bandit.Counts{{Exposures: 2}, {}}},
	}}
	if !reflect.DeepEqual(got, want) || ev.by != experiments.BySegmentDay || ev.query.Kind != "value" {
		t.Errorf("discounted counts = %+v by %q kind %q", got, ev.by, ev.query.Kind)
	}
	ev.data.Arms = []experiments.ArmAggregate{{Variant: "a", Day: "yesterday"}}
	if _, err := b.Counts(context.Background(), spec); err == nil {
		t.Error("a malformed day was accepted")
	}
}

// TestBanditsWinner: a winner only when the results recommend shipping it, and it is
// recorded in the experiment document through the audited update.
func TestBanditsWinner(t *testing.T) {
	p := 0.97
	res := results{
		"ship": {Recommendation: experiments.Recommendation{Decision: "ship", Variant: "b"},
			Metrics: []experiments.MetricResult{{Variants: []stats.VariantResult{{Key: "a"}, {Key: "b", PBest: &p}}}}},
		"wait": {Recommendation: experiments.Recommendation{Decision: "keep_running"}},
	}
	c := &config{docs: map[experiments.Kind]map[string]string{experiments.KindExperiment: {
		"ship": `{"key":"ship","type":"bandit"}`,
	}}}
	b := &feeds.Bandits{Config: c, Results: res}
	if v, pb, err := b.Winner(context.Background(), bandit.Spec{Experiment: "ship"}); err != nil || v != "b" || pb != p {
		t.Errorf("winner = %q %v %v, want b %v", v, pb, err, p)
	}
	if v, _, err := b.Winner(context.Background(), bandit.Spec{Experiment: "wait"}); err != nil || v != "" {
		t.Errorf("keep_running gave winner %q (%v)", v, err)
	}
	if err := b.DeclareWinner(context.Background(), "ship", "b", p); err != nil {
		t.Fatal(err)
	}
	if doc := c.docs[experiments.KindExperiment]["ship"]; !strings.Contains(doc, `"bandit":{"winner":"b"}`) {
		t.Errorf("document after declaring = %s", doc)
	}
	if len(c.updates) != 1 || !strings.HasPrefix(c.updates[0], "ship declare-winner bandit-updater (P(best) 0.970)") {
		t.Errorf("updates = %q", c.updates)
	}
}

// TestSegmentDefinitions: published behavioural segments under their key, drafts
// under the preview key, attribute segments left out; the fingerprint changes with
// any definition.
func TestSegmentDefinitions(t *testing.T) {
	c := &config{docs: map[experiments.Kind]map[string]string{experiments.KindSegment: {
		"buyers": `{"key":"buyers","kind":"behavioral","rule":{"event":"purchase","count_gte":1,"within":"168h"},"ttl":"24h","status":"published"}`,
		"attr":   `{"key":"attr","kind":"attribute","condition":{"country":"FR"},"status":"published"}`,
	}}}
	defs := feeds.SegmentDefinitions(c)
	got, fp1, err := defs(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Key != "buyers" || got[0].TTL != 24*time.Hour {
		t.Fatalf("definitions = %+v", got)
	}
	if !strings.HasPrefix(fp1, "buyers@") {
		t.Errorf("fingerprint %q does not start with the keys", fp1)
	}
	c.docs[experiments.KindSegment]["buyers"] = strings.Replace(c.docs[experiments.KindSegment]["buyers"], `"count_gte":1`, `"count_gte":2`, 1)
	if _, fp2, err := defs(context.Background()); err != nil || fp2 == fp1 {
		t.Errorf("fingerprint unchanged (%q) after the rule changed (%v)", fp2, err)
	}
	c.docs[experiments.KindSegment]["buyers"] = `{"key":"buyers","kind":"behavioral","rule":{"event":"purchase","count_gte":1,"within":"168h"},"ttl":"soon","status":"published"}`
	if _, _, err := defs(context.Background()); err == nil || !strings.Contains(err.Error(), `segment "buyers": ttl`) {
		t.Errorf("bad ttl: err = %v", err)
	}
}
