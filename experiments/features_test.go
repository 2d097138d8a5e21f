package experiments_test

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/liftlab/lift/experiments"
	"github.com/liftlab/lift/internal/derrors"
)

func TestFeatureValidate(t *testing.T) {
	tests := []struct {
		doc    string
		fields []string
	}{
		{`{"key":"views_10m","kind":"count","event":"product_view","within":"10m"}`, nil},
		{`{"key":"recent","kind":"last_n","event":["product_view","add_to_cart"],"property":"sku","n":20,"within":"24h"}`, nil},
		{`{"key":"Bad Key","kind":"count","event":"product_view","within":"10m"}`, []string{"key"}},
		{`{"key":"x","kind":"count","event":"product_view","within":"forever"}`, []string{"within"}},
		{`{"key":"x","kind":"last_n","event":"product_view","property":"sku","within":"1h"}`, []string{"n"}},
		{`{"key":"x","kind":"count","event":"product_view","within":"1h","where":{"price":{"$gtt":1}}}`, []string{"where.price.$gtt"}},
	}
	for _, tt := range tests {
		var f experiments.Feature
		if err := json.Unmarshal([]byte(tt.doc), &f); err != nil {
			t.Fatal(err)
		}
		err := f.Validate()
		var got []string
		if ve, ok := err.(*derrors.ValidationError); ok {
			for _, fe := range ve.Fields {
				got = append(got, fe.Field)
			}
		} else if err != nil {
			t.Fatalf("%s: %v", tt.doc, err)
		}
		if diff := cmp.Diff(tt.fields, got); diff != "" {
			t.Errorf("%s: fields (-want +got):\n%s", tt.doc, diff)
		}
	}
}

type featureValues map[string]map[string]any

func (f featureValues) FeatureValue(user, feature string) (any, bool) {
	v, ok := f[user][feature]
	return v, ok
}

// Conditions read a user's features as features.<key>, with the published value or
// the default; a client cannot send its own.
func TestFeaturesInConditions(t *testing.T) {
	flag := experiments.Flag{Key: "offer", Type: "boolean", Default: json.RawMessage(`false`), Enabled: ptr(true),
		Rules: []experiments.Rule{{Condition: json.RawMessage(`{"features.views_10m":{"$gte":3}}`), Value: json.RawMessage(`true`)}}}
	few := experiments.Flag{Key: "nudge", Type: "boolean", Default: json.RawMessage(`false`), Enabled: ptr(true),
		Rules: []experiments.Rule{{Condition: json.RawMessage(`{"features.views_10m":{"$lt":3},"features.recent":{"$size":0}}`), Value: json.RawMessage(`true`)}}}
	values := featureValues{"keen": {"features.views_10m": 4.0, "features.recent": []any{"a", "b"}}}
	snap := mustSnapshot(t, &experiments.Config{
		Flags: []experiments.Flag{flag, few},
		Features: []experiments.Feature{
			{Key: "views_10m", Kind: "count", Event: json.RawMessage(`"product_view"`), Within: "10m"},
			{Key: "recent", Kind: "last_n", Event: json.RawMessage(`"product_view"`), Property: "sku", N: 5, Within: "1h"},
		},
		FeatureValues: values,
	})
	decide := func(s *experiments.Snapshot, user string, attrs map[string]any) map[string]string {
		out := map[string]string{}
		for _, d := range s.Decide(user, attrs, nil, nil) {
			out[d.Key] = string(d.Value)
		}
		return out
	}
	if got := decide(snap, "keen", nil); got["offer"] != "true" || got["nudge"] != "false" {
		t.Errorf("keen user: %v, want the offer", got)
	}
	if got := decide(snap, "new", nil); got["offer"] != "false" || got["nudge"] != "true" {
		t.Errorf("new user (defaults 0 and []): %v, want the nudge", got)
	}
	spoof := map[string]any{"features": map[string]any{"views_10m": 99}}
	if got := decide(snap, "new", spoof); got["offer"] != "false" {
		t.Errorf("a client's own features count: %v", got)
	}
	if d, _ := snap.Impersonal().Evaluate("offer", "keen", nil); string(d.Value) != "false" {
		t.Errorf("impersonal view reads features: %s", d.Value)
	}
	want := map[string]any{"views_10m": 4.0, "recent": []any{"a", "b"}}
	if diff := cmp.Diff(want, snap.UserFeatures("keen")); diff != "" {
		t.Errorf("UserFeatures (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]any{"views_10m": 0.0, "recent": []any{}}, snap.UserFeatures("new")); diff != "" {
		t.Errorf("UserFeatures of a user without values (-want +got):\n%s", diff)
	}
}

func TestRecommenderValidate(t *testing.T) {
	var r experiments.Recommender
	_ = json.Unmarshal([]byte(`{"key":"similar","event_types":["product_view","purchase"],"item_property":"sku"}`), &r)
	r.Normalize()
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	if r.RetrainEvery != "1h0m0s" || r.Weights["purchase"] != 5 || r.Neighbours != 50 {
		t.Errorf("defaults: %+v", r)
	}
	bad := experiments.Recommender{Key: "x", EventTypes: []string{"product_view", "product_view"}, ItemProperty: "",
		Weights: map[string]float64{"click": 1}, RetrainEvery: "1s", Neighbours: 500}
	bad.Normalize()
	err := bad.Validate()
	ve, ok := err.(*derrors.ValidationError)
	if !ok {
		t.Fatalf("Validate = %v", err)
	}
	var fields []string
	for _, f := range ve.Fields {
		fields = append(fields, f.Field)
	}
	want := []string{"event_types[1]", "item_property", "weights.click", "retrain_every", "neighbours"}
	if diff := cmp.Diff(want, fields); diff != "" {
		t.Errorf("fields (-want +got):\n%s", diff)
	}
}
