package gbpayload_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"testing"
	"time"

	growthbook "github.com/growthbook/growthbook-golang"

	"github.com/liftlab/lift/experiments"
	"github.com/liftlab/lift/experiments/gbpayload"
)

// The fixture (testdata/config.json) has every kind of rule: experiments with
// targeting, coverage, hash versions 1 and 2, namespaces, a custom seed, attribute and
// behavioural segments, a paused one and a bandit with per-segment weights; flags with
// saved groups, rollouts, segments, experiment rules and one disabled.

func loadConfig(t testing.TB) *experiments.Config {
	t.Helper()
	data, err := os.ReadFile("testdata/config.json")
	if err != nil {
		t.Fatal(err)
	}
	var cfg experiments.Config
	if err := json.Unmarshal(data, &cfg); err != nil {
		t.Fatal(err)
	}
	// What the bandit updater would have published for reco.
	arms := []string{"trending", "similar", "bestsellers"}
	cfg.BanditWeights = []experiments.BanditWeights{
		{Experiment: "reco", Segment: "", Variants: arms, Weights: []float64{0.2, 0.3, 0.5}},
		{Experiment: "reco", Segment: "new", Variants: arms, Weights: []float64{0.7, 0.2, 0.1}},
		{Experiment: "reco", Segment: "returning", Variants: arms, Weights: []float64{0.1, 0.8, 0.1}},
	}
	return &cfg
}

// userID is the i-th test user: ASCII ids and, every third, non-ASCII ones (Latin-1,
// CJK and an emoji outside the Basic Multilingual Plane, which JavaScript hashes as
// two UTF-16 code units).
func userID(i int) string {
	switch i % 6 {
	case 1:
		return fmt.Sprintf("ü-%d", i)
	case 3:
		return fmt.Sprintf("用户-%d", i)
	case 5:
		return fmt.Sprintf("user-🙂-%d", i)
	}
	return fmt.Sprintf("u-%d", i)
}

func attributes(i int) map[string]any {
	countries := []string{"US", "CA", "DE", "FR", "GB", "JP"}
	attrs := map[string]any{
		"id":      userID(i),
		"country": countries[(i/2)%len(countries)],
		"device":  []string{"mobile", "desktop"}[(i/3)%2],
		"visits":  float64((i / 5) % 5),
		"plan":    []string{"free", "pro"}[(i/7)%2],
		"age":     float64(18 + (i*7)%50),
	}
	return attrs
}

// everyTenth puts every tenth user in the behavioural segment high-intent.
type everyTenth map[string]bool

func (m everyTenth) IsMember(segment, userID string) bool {
	return segment == "high-intent" && m[userID]
}

func TestGoSDKEvaluatesAsDecide(t *testing.T) {
	cfg := loadConfig(t)
	members := everyTenth{}
	const users = 3000
	for i := 0; i < users; i += 10 {
		members[userID(i)] = true
	}
	cfg.Members = members
	snap := experiments.NewSnapshot(cfg, time.Now())
	body, err := json.Marshal(gbpayload.Build(snap, time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	gb, err := growthbook.NewClient(ctx, growthbook.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	if err := gb.UpdateFromApiResponseJSON(string(body)); err != nil {
		t.Fatal(err)
	}
	assigned := map[string]int{}
	for i := range users {
		attrs := attributes(i)
		// What an app passes after reading /v1/decide's segments.
		segs := []any{}
		for _, k := range snap.MemberSegments(userID(i), attrs) {
			segs = append(segs, k)
		}
		attrs[gbpayload.SegmentsAttribute] = segs
		user, err := gb.WithAttributes(attrs)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range snap.Decide(userID(i), attrs, nil, nil) {
			got := user.EvalFeature(ctx, d.Key)
			if !sameJSON(t, got.Value, d.Value) {
				t.Fatalf("user %q, %s: SDK %v (source %s), decide %s (%s)", userID(i), d.Key, got.Value, got.Source, d.Value, d.Reason)
			}
			if d.Assigned {
				assigned[d.ExperimentKey+"/"+d.Variant+"/"+d.Segment]++
				if got.Experiment == nil || got.Experiment.Key != d.ExperimentKey || got.ExperimentResult.Key != d.Variant ||
					got.Experiment.Phase != d.Segment {
					t.Fatalf("user %q, %s: decide assigned %s/%s (segment %q), SDK reports %+v %+v", userID(i), d.Key,
						d.ExperimentKey, d.Variant, d.Segment, got.Experiment, got.ExperimentResult)
				}
				w := got.Experiment.Weights[got.ExperimentResult.VariationId]
				if w != d.Probability {
					t.Fatalf("user %q, %s: weight %v, decide's probability %v", userID(i), d.Key, w, d.Probability)
				}
			} else if got.Source == growthbook.ExperimentResultSource {
				t.Fatalf("user %q, %s: SDK assigned %v, decide did not (%s)", userID(i), d.Key, got.Value, d.Reason)
			}
		}
	}
	// The fixture must exercise what it claims: every variant of every running
	// experiment, and both bandit segments, assigned to someone.
	for _, want := range []string{"hero/bold/", "checkout/red/", "ns-a/on/", "ns-b/a/", "mobile-only/y/", "intent-exp/urgent/",
		"reco/trending/new", "reco/similar/returning", "reco/bestsellers/"} {
		if assigned[want] == 0 {
			t.Errorf("nobody assigned %s: %v", want, assigned)
		}
	}
}

func sameJSON(t *testing.T, sdk any, lift json.RawMessage) bool {
	t.Helper()
	b, err := json.Marshal(sdk)
	if err != nil {
		t.Fatal(err)
	}
	var a, c any
	if err := json.Unmarshal(b, &a); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(lift, &c); err != nil {
		t.Fatal(err)
	}
	return reflect.DeepEqual(a, c)
}
