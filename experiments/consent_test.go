package experiments_test

import (
	"encoding/json"
	"testing"

	"github.com/liftlab/lift/experiments"
)

type members map[string]bool

func (m members) IsMember(segment, userID string) bool { return m[segment+"/"+userID] }

// Without personalisation consent: no experiment (directly or through a flag rule),
// no behavioural segment, nothing sticky; attribute rules and rollouts still apply.
func TestImpersonal(t *testing.T) {
	exp := abTest("hero", experiments.StatusRunning, 0, 1)
	exp.Type = experiments.TypeBandit
	exp.Bandit = &experiments.BanditConfig{Sticky: true}
	snap := mustSnapshot(t, &experiments.Config{
		Experiments: []experiments.Experiment{exp},
		Segments:    []experiments.Segment{{Key: "buyers", Kind: "behavioral", Rule: json.RawMessage(`{"event":"purchase","count_gte":1,"within":"1h"}`)}},
		Flags: []experiments.Flag{{Key: "banner", Type: "string", Default: json.RawMessage(`"none"`), Rules: []experiments.Rule{
			{Segment: "buyers", Value: json.RawMessage(`"thanks"`)},
			{Experiment: "hero"},
			{Condition: json.RawMessage(`{"country":"FR"}`), Value: json.RawMessage(`"bonjour"`)},
		}}},
		Members: members{"buyers/u1": true},
	})
	attrs := map[string]any{"country": "FR"}
	if d, _ := snap.Evaluate("banner", "u1", attrs); string(d.Value) != `"thanks"` {
		t.Fatalf("with consent the member gets %s", d.Value)
	}
	imp := snap.Impersonal()
	if imp.Impersonal() != imp || imp.Version != snap.Version {
		t.Error("Impersonal of the impersonal view is another view")
	}
	ds := imp.Decide("u1", attrs, nil, nil)
	byKey := map[string]experiments.Decision{}
	for _, d := range ds {
		byKey[d.Key] = d.Decision
	}
	if d := byKey["hero"]; d.Assigned || d.Reason != experiments.ReasonNotEligible || d.Variant != "v0" {
		t.Errorf("experiment: %+v, want the control, not eligible", d)
	}
	if d := byKey["banner"]; string(d.Value) != `"bonjour"` || d.Assigned {
		t.Errorf("flag: %+v, want the attribute rule", d)
	}
	if doc := imp.Stick(map[string]string{"hero": "v1"}, ds); doc != nil {
		t.Errorf("sticky document %v", doc)
	}
	// The snapshot itself is unchanged.
	if d, _ := snap.Evaluate("hero", "u1", nil); !d.Assigned {
		t.Errorf("consented decision %+v", d)
	}
}
