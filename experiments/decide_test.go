package experiments_test

import (
	"encoding/json"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/liftlab/lift/experiments"
)

func ptr[T any](v T) *T { return &v }

func mustSnapshot(t testing.TB, cfg *experiments.Config) *experiments.Snapshot {
	t.Helper()
	return experiments.NewSnapshot(cfg, time.Now())
}

func abTest(key string, status string, weights ...float64) experiments.Experiment {
	e := experiments.Experiment{Key: key, Status: status}
	for i, w := range weights {
		e.Variants = append(e.Variants, experiments.Variant{Key: fmt.Sprintf("v%d", i), Weight: w})
	}
	return e
}

func TestDecideExperiment(t *testing.T) {
	running := abTest("hero", experiments.StatusRunning, 0.5, 0.5)
	running.Variants[1].Value = json.RawMessage(`{"img":"b.png"}`)
	draft := abTest("draft", experiments.StatusDraft, 0.5, 0.5)
	targeted := abTest("us-only", experiments.StatusRunning, 0.5, 0.5)
	targeted.Targeting = json.RawMessage(`{"country":{"$in":["US","CA"]}}`)
	segmented := abTest("mobile", experiments.StatusRunning, 0.5, 0.5)
	segmented.Segments = []string{"mobile"}
	noCoverage := abTest("nobody", experiments.StatusRunning, 0.5, 0.5)
	noCoverage.Coverage = ptr(0.0)
	outsideNS := abTest("ns", experiments.StatusRunning, 0.5, 0.5)
	outsideNS.Namespace = &experiments.Namespace{ID: "homepage", Range: [2]float64{0, 0.0001}}
	snap := mustSnapshot(t, &experiments.Config{
		Experiments: []experiments.Experiment{running, draft, targeted, segmented, noCoverage, outsideNS},
		Segments:    []experiments.Segment{{Key: "mobile", Kind: "attribute", Condition: json.RawMessage(`{"device":"mobile"}`)}},
	})
	control := func(d experiments.Decision) experiments.Decision {
		return experiments.Decision{Variant: "v0", Value: json.RawMessage(`"v0"`), Reason: experiments.ReasonNotEligible, Experiment: true}
	}

	tests := []struct {
		name  string
		key   string
		attrs map[string]any
		want  func(experiments.Decision) experiments.Decision
	}{
		{"draft experiments assign nobody", "draft", nil, control},
		{"targeting miss", "us-only", map[string]any{"country": "FR"}, control},
		{"segment miss", "mobile", map[string]any{"device": "desktop"}, control},
		{"coverage 0", "nobody", nil, control},
		{"outside namespace", "ns", nil, control},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := snap.Evaluate(tt.key, "user-42", tt.attrs)
			if !ok {
				t.Fatal("not found")
			}
			if diff := cmp.Diff(tt.want(got), got); diff != "" {
				t.Errorf("decision (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("in experiment", func(t *testing.T) {
		for _, key := range []string{"hero", "us-only", "mobile"} {
			d, _ := snap.Evaluate(key, "user-42", map[string]any{"country": "US", "device": "mobile"})
			if !d.Assigned || d.Reason != experiments.ReasonSplit || d.Probability != 0.5 || d.ExperimentKey != key {
				t.Errorf("%s: got %+v, want an assignment by split with probability 0.5", key, d)
			}
		}
	})
	t.Run("value defaults to the variant key", func(t *testing.T) {
		for i := range 50 {
			d, _ := snap.Evaluate("hero", fmt.Sprint("u", i), nil)
			want := `"v0"`
			if d.Variant == "v1" {
				want = `{"img":"b.png"}`
			}
			if string(d.Value) != want {
				t.Fatalf("variant %s has value %s, want %s", d.Variant, d.Value, want)
			}
		}
	})
}

// TestAssignmentsAreStable pins assignments computed with GrowthBook's hash: a change
// that moved existing users between variants would break running experiments.
func TestAssignmentsAreStable(t *testing.T) {
	exp := abTest("exp-1", experiments.StatusRunning, 0.2, 0.3, 0.5)
	snap := mustSnapshot(t, &experiments.Config{Experiments: []experiments.Experiment{exp}})
	again := mustSnapshot(t, &experiments.Config{Experiments: []experiments.Experiment{exp}})
	for i := range 1000 {
		id := fmt.Sprintf("user-%d", i)
		a, _ := snap.Evaluate("exp-1", id, nil)
		b, _ := again.Evaluate("exp-1", id, nil)
		if a.Variant != b.Variant {
			t.Fatalf("%s: %s then %s", id, a.Variant, b.Variant)
		}
		// The variant follows from the hash alone: fnv-based v2 hash of seed+id.
		n, _ := experiments.Hash("exp-1", id, 2)
		want := "v0"
		if n >= 0.5 {
			want = "v2"
		} else if n >= 0.2 {
			want = "v1"
		}
		if a.Variant != want {
			t.Fatalf("%s: hash %v gave %s, want %s", id, n, a.Variant, want)
		}
	}
}

func TestSplitMatchesWeights(t *testing.T) {
	if testing.Short() {
		t.Skip("1,000,000 users")
	}
	for _, weights := range [][]float64{{0.5, 0.5}, {0.2, 0.3, 0.5}} {
		t.Run(fmt.Sprint(weights), func(t *testing.T) {
			exp := abTest("split", experiments.StatusRunning, weights...)
			snap := mustSnapshot(t, &experiments.Config{Experiments: []experiments.Experiment{exp}})
			const users = 1_000_000
			counts := map[string]int{}
			for i := range users {
				d, _ := snap.Evaluate("split", fmt.Sprintf("u%d", i), nil)
				counts[d.Variant]++
			}
			for i, w := range weights {
				share := float64(counts[fmt.Sprintf("v%d", i)]) / users
				if math.Abs(share-w) > 0.003 {
					t.Errorf("variant %d: share %.4f, want %.2f ± 0.003", i, share, w)
				}
				t.Logf("variant %d: weight %.2f share %.4f", i, w, share)
			}
		})
	}
}

func TestFlags(t *testing.T) {
	exp := abTest("checkout", experiments.StatusRunning, 0.5, 0.5)
	exp.Targeting = json.RawMessage(`{"beta":true}`)
	cfg := &experiments.Config{
		Experiments: []experiments.Experiment{exp},
		Segments:    []experiments.Segment{{Key: "vip", Kind: "attribute", Condition: json.RawMessage(`{"plan":"vip"}`)}},
		SavedGroups: []experiments.SavedGroup{{Key: "staff", Values: []any{"alice"}}},
		Flags: []experiments.Flag{
			{Key: "off", Type: "boolean", Default: json.RawMessage(`false`), Enabled: ptr(false),
				Rules: []experiments.Rule{{Value: json.RawMessage(`true`)}}},
			{Key: "theme", Type: "string", Default: json.RawMessage(`"light"`), Rules: []experiments.Rule{
				{Condition: json.RawMessage(`{"name":{"$inGroup":"staff"}}`), Value: json.RawMessage(`"staff"`), Variant: "staff"},
				{Segment: "vip", Value: json.RawMessage(`"gold"`)},
				{Experiment: "checkout"},
				{Rollout: ptr(0.0), Value: json.RawMessage(`"never"`)},
			}},
		},
	}
	snap := mustSnapshot(t, cfg)
	tests := []struct {
		name, flag  string
		attrs       map[string]any
		wantVariant string
		wantValue   string
		wantReason  experiments.Reason
	}{
		{"kill switch", "off", nil, "default", "false", experiments.ReasonDisabled},
		{"saved group rule", "theme", map[string]any{"name": "alice"}, "staff", `"staff"`, experiments.ReasonTargetingMatch},
		{"segment rule", "theme", map[string]any{"plan": "vip"}, "rule-1", `"gold"`, experiments.ReasonTargetingMatch},
		{"nothing matches", "theme", map[string]any{"plan": "free"}, "default", `"light"`, experiments.ReasonDefault},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, ok := snap.Evaluate(tt.flag, "u1", tt.attrs)
			if !ok || d.Variant != tt.wantVariant || string(d.Value) != tt.wantValue || d.Reason != tt.wantReason {
				t.Errorf("got %+v (found %v), want variant %s value %s reason %s", d, ok, tt.wantVariant, tt.wantValue, tt.wantReason)
			}
		})
	}
	t.Run("experiment rule", func(t *testing.T) {
		d, _ := snap.Evaluate("theme", "u1", map[string]any{"beta": true})
		if !d.Experiment || !d.Assigned || d.ExperimentKey != "checkout" || d.Reason != experiments.ReasonSplit {
			t.Errorf("got %+v, want the checkout experiment's assignment", d)
		}
	})
	t.Run("rollout share", func(t *testing.T) {
		rolled := mustSnapshot(t, &experiments.Config{Flags: []experiments.Flag{{Key: "ship", Type: "boolean",
			Default: json.RawMessage(`false`), Rules: []experiments.Rule{{Rollout: ptr(0.2), Value: json.RawMessage(`true`)}}}}})
		on := 0
		for i := range 100_000 {
			if d, _ := rolled.Evaluate("ship", fmt.Sprint("u", i), nil); string(d.Value) == "true" {
				on++
			}
		}
		if share := float64(on) / 100_000; math.Abs(share-0.2) > 0.005 {
			t.Errorf("rollout share %.4f, want 0.2 ± 0.005", share)
		}
	})
}

func TestDecideAll(t *testing.T) {
	snap := mustSnapshot(t, &experiments.Config{
		Experiments: []experiments.Experiment{abTest("b", experiments.StatusRunning, 0.5, 0.5)},
		Flags:       []experiments.Flag{{Key: "a", Type: "number", Default: json.RawMessage(`3`)}},
	})
	if got := snap.Keys(); !cmp.Equal(got, []string{"b", "a"}) {
		t.Errorf("keys %v, want experiments then flags", got)
	}
	all := snap.Decide("u", nil, nil, nil)
	if len(all) != 2 || all[0].Key != "b" || all[1].Key != "a" {
		t.Errorf("decided %+v, want b then a", all)
	}
	some := snap.Decide("u", nil, []string{"a", "missing"}, all[:0])
	if len(some) != 1 || some[0].Key != "a" || string(some[0].Value) != "3" {
		t.Errorf("decide with keys: %+v, want only a", some)
	}
}

// A bandit serves the updater's weights, per segment: a user goes to the first of
// the bandit's segments they belong to, everyone else to the global weights.
func TestBanditAllocation(t *testing.T) {
	e := abTest("reco", experiments.StatusRunning, 0.5, 0.5)
	e.Type = experiments.TypeBandit
	e.Bandit = &experiments.BanditConfig{PerSegment: []string{"mobile", "desktop"}}
	cfg := &experiments.Config{
		Experiments: []experiments.Experiment{e},
		Segments: []experiments.Segment{
			{Key: "mobile", Kind: "attribute", Condition: json.RawMessage(`{"device":"mobile"}`)},
			{Key: "desktop", Kind: "attribute", Condition: json.RawMessage(`{"device":"desktop"}`)},
		},
		BanditWeights: []experiments.BanditWeights{
			{Experiment: "reco", Segment: "", Variants: []string{"v0", "v1"}, Weights: []float64{0.2, 0.8}},
			{Experiment: "reco", Segment: "mobile", Variants: []string{"v0", "v1"}, Weights: []float64{1, 0}},
			// Published for variants the experiment no longer has: ignored.
			{Experiment: "reco", Segment: "desktop", Variants: []string{"v0", "vx"}, Weights: []float64{0, 1}},
		},
	}
	snap := mustSnapshot(t, cfg)
	counts := map[string]map[string]int{}
	for i := range 10_000 {
		for _, device := range []string{"mobile", "desktop", "tv"} {
			d, _ := snap.Evaluate("reco", fmt.Sprint("u", i), map[string]any{"device": device})
			if d.Reason != experiments.ReasonBandit || !d.Assigned {
				t.Fatalf("%+v", d)
			}
			want := map[string]string{"mobile": "mobile", "desktop": "desktop", "tv": ""}[device]
			if d.Segment != want {
				t.Fatalf("device %s: segment %q, want %q", device, d.Segment, want)
			}
			if counts[device] == nil {
				counts[device] = map[string]int{}
			}
			counts[device][d.Variant]++
			if device == "mobile" && d.Probability != 1 || device != "mobile" && d.Variant == "v1" && d.Probability != 0.8 {
				t.Fatalf("device %s variant %s: probability %v", device, d.Variant, d.Probability)
			}
		}
	}
	if counts["mobile"]["v1"] != 0 {
		t.Errorf("mobile users got v1 at weight 0: %v", counts["mobile"])
	}
	for _, device := range []string{"desktop", "tv"} {
		if share := float64(counts[device]["v1"]) / 10_000; math.Abs(share-0.8) > 0.02 {
			t.Errorf("%s: v1 share %.3f, want the global 0.8", device, share)
		}
	}
}

// A sticky bandit keeps users on the arm their sticky-bucket document names, even
// after the weights moved away from it.
func TestSticky(t *testing.T) {
	e := abTest("reco", experiments.StatusRunning, 0.5, 0.5)
	e.Type = experiments.TypeBandit
	e.Bandit = &experiments.BanditConfig{Sticky: true}
	plain := abTest("plain", experiments.StatusRunning, 0.5, 0.5)
	plain.Type = experiments.TypeBandit
	snap := mustSnapshot(t, &experiments.Config{
		Experiments:   []experiments.Experiment{e, plain},
		BanditWeights: []experiments.BanditWeights{{Experiment: "reco", Variants: []string{"v0", "v1"}, Weights: []float64{0, 1}}},
	})
	ds := snap.Decide("u1", nil, nil, nil)
	doc := snap.Stick(nil, ds)
	if len(doc) != 1 || doc["reco"] != "v1" {
		t.Fatalf("first visit: document %v, want reco: v1 (the only arm with weight)", doc)
	}
	ds = snap.Decide("u1", nil, []string{"reco"}, nil)
	doc = snap.Stick(map[string]string{"reco": "v0", "plain": "v1"}, ds)
	if ds[0].Variant != "v0" || doc["reco"] != "v0" || ds[0].Probability != 0 || string(ds[0].Value) != `"v0"` {
		t.Errorf("returning user: %+v, document %v; want v0 kept", ds[0], doc)
	}
	ds = snap.Decide("u1", nil, []string{"reco"}, nil)
	if doc := snap.Stick(map[string]string{"reco": "gone"}, ds); ds[0].Variant != "v1" || doc["reco"] != "v1" {
		t.Errorf("a variant that no longer exists: %+v, %v", ds[0], doc)
	}
}

// A behavioural segment decides by the memberships the engine publishes, and a
// segment never published (a draft in preview) matches nobody, even with members.
func TestBehavioralAndDraftSegments(t *testing.T) {
	members := experiments.NewMemberSet()
	members.Set("hi", "u1", true)
	members.Set("new", "u1", true)
	cfg := &experiments.Config{
		Segments: []experiments.Segment{
			{Key: "hi", Kind: "behavioral", Status: experiments.SegmentPublished},
			{Key: "new", Kind: "behavioral", Status: experiments.SegmentDraft},
		},
		Flags: []experiments.Flag{{Key: "offer", Type: "string", Default: json.RawMessage(`"none"`), Rules: []experiments.Rule{
			{Segment: "new", Value: json.RawMessage(`"draft"`)},
			{Segment: "hi", Value: json.RawMessage(`"discount"`)},
		}}},
		Members: members,
	}
	snap := mustSnapshot(t, cfg)
	for user, want := range map[string]string{"u1": `"discount"`, "u2": `"none"`} {
		if d, _ := snap.Evaluate("offer", user, nil); string(d.Value) != want {
			t.Errorf("%s gets %s, want %s", user, d.Value, want)
		}
	}
}
