package experiments_test

import (
	"context"
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/liftlab/lift/experiments"
	"github.com/liftlab/lift/experiments/stats"
)

// oneExperiment is a configuration store holding one experiment document.
type oneExperiment struct {
	experiments.Store
	doc string
}

func (s oneExperiment) Get(context.Context, experiments.Kind, string) (json.RawMessage, error) {
	return json.RawMessage(s.doc), nil
}

// storedArms is an event store answering every query with the same aggregates, as
// one day and one segment in breakdowns: whatever rows would have summed to.
type storedArms []experiments.ArmAggregate

func (a storedArms) MetricAggregates(_ context.Context, _ experiments.MetricQuery, by experiments.Breakdown) (experiments.MetricData, error) {
	arms := append([]experiments.ArmAggregate(nil), a...)
	for i := range arms {
		if by == experiments.ByDay {
			arms[i].Group = "2026-12-01"
		}
	}
	return experiments.MetricData{Arms: arms}, nil
}

func (storedArms) LatestEvent(context.Context) (time.Time, error) { return time.Time{}, nil }

var edge = []float64{math.Inf(1), math.Inf(-1), math.NaN(), 1e308, 5e-324, math.Copysign(0, -1), 3e15, 1e15, 999.995, math.MaxInt64}

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

// FuzzResultsJSON: whatever the event store sums to, the results service answers,
// every comparison in it is a finite number or absent, and the answer encodes as
// valid JSON whose numbers read back as computed (null where not finite).
func FuzzResultsJSON(f *testing.F) {
	f.Add(1000.0, 100.0, 2000.0, 50000.0, 0.0, 1000.0, 150.0, 2600.0, 80000.0, 0.0, uint8(0))
	for _, x := range edge {
		f.Add(1000.0, 100.0, 2000.0, 50000.0, 0.0, 1000.0, 150.0, x, x, 0.0, uint8(1))
		f.Add(1000.0, 100.0, x, x*x, x, 1000.0, 150.0, 2600.0, 80000.0, x, uint8(6))
		f.Add(x, 1.0, 2000.0, 50000.0, 10.0, 1000.0, x, 2600.0, 80000.0, 20.0, uint8(3))
	}
	f.Fuzz(func(t *testing.T, n0, x0, s0, q0, pre0, n1, x1, s1, q1, pre1 float64, opts uint8) {
		analysis := `{"cuped":` + map[bool]string{true: "true", false: "false"}[opts&1 != 0] +
			`,"sequential":` + map[bool]string{true: "true", false: "false"}[opts&2 != 0] +
			`,"correction":"` + []string{"none", "holm", "benjamini-hochberg", "none"}[opts>>2&3] + `"}`
		doc := `{"key":"x","status":"running","variants":[{"key":"control","weight":0.5},{"key":"treat","weight":0.5}],
			"goal":{"event":"purchase","kind":"value"},"metrics":[{"key":"buyers","event":"purchase","kind":"conversion"}],
			"analysis":` + analysis + `}`
		svc := &experiments.ResultsService{Store: oneExperiment{doc: doc}, Events: storedArms{
			{Variant: "control", Users: n0, Conversions: x0, Sum: s0, SumSq: q0, PreSum: pre0, PreSumSq: pre0 * pre0, PreCross: pre0 * s0},
			{Variant: "treat", Users: n1, Conversions: x1, Sum: s1, SumSq: q1, PreSum: pre1, PreSumSq: pre1 * pre1, PreCross: pre1 * s1},
		}}
		res, err := svc.Results(context.Background(), "x")
		if err != nil {
			t.Fatal(err)
		}
		data, err := json.Marshal(res)
		if err != nil || !json.Valid(data) {
			t.Fatalf("JSON: %s, %v", data, err)
		}
		var back struct {
			Users   *float64
			Metrics []struct {
				Variants []struct{ Value *float64 }
			}
			Recommendation struct {
				UsersNeeded *float64 `json:"users_needed"`
			}
		}
		if err := json.Unmarshal(data, &back); err != nil {
			t.Fatal(err)
		}
		readBack := func(what string, got *float64, want float64) {
			if finite(want) != (got != nil) || got != nil && *got != want {
				t.Fatalf("%s: %v read back as %v\n%s", what, want, got, data)
			}
		}
		readBack("users", back.Users, res.Users)
		if n := res.Recommendation.UsersNeeded; n != nil {
			readBack("users needed", back.Recommendation.UsersNeeded, *n)
		}
		for m, mr := range res.Metrics {
			for v, vr := range mr.Variants {
				readBack("value", back.Metrics[m].Variants[v].Value, vr.Value)
				for _, p := range []*float64{vr.Lift, vr.CILow, vr.CIHigh, vr.PValue, vr.ChanceToBeatControl, vr.AbsoluteLift, vr.ExpectedLoss} {
					if p != nil && !finite(*p) {
						t.Fatalf("metric %s variant %s: a comparison of %v\n%s", mr.Key, vr.Key, *p, data)
					}
				}
				if mr.Kind == "value" && vr.Users > 0 && (!finite(s0) || !finite(q0) || !finite(s1) || !finite(q1)) && vr.Lift != nil {
					t.Fatalf("a lift from sums that are not finite\n%s", data)
				}
			}
		}
	})
}

// TestResultsJSONMatchesPlainEncoding: for finite numbers the encoders write exactly
// what encoding/json writes for the types without them, so their field lists cannot
// drift from the types'.
func TestResultsJSONMatchesPlainEncoding(t *testing.T) {
	x := 0.25
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	v := stats.VariantResult{Key: "k", Users: 10, Sum: &x, Value: 0.5, Lift: &x}
	m := experiments.MetricResult{Key: "goal", Role: "goal", Event: "purchase", Kind: "value", Window: "168h0m0s", Variants: []stats.VariantResult{v, v}, CUPED: true, Theta: 0.7}
	rec := experiments.Recommendation{Decision: "keep_running", Variant: "k", Reason: "r", UsersNeeded: &x}
	r := experiments.Results{Experiment: "x", Status: "running", ComputedAt: now, DataFreshness: &now, Users: 20, MultiVariantUsers: 1,
		SRMPValue: &x, SRM: true, Correction: "holm", Sequential: true, Metrics: []experiments.MetricResult{m}, Recommendation: rec,
		Daily: []experiments.GroupResult{{Group: "2026-12-01", Variants: []stats.VariantResult{v}}}, Segments: []experiments.GroupResult{{Group: "", Variants: []stats.VariantResult{v}}}}
	type plainResults experiments.Results
	type plainMetric experiments.MetricResult
	type plainRecommendation experiments.Recommendation
	for _, c := range []struct{ v, plain any }{
		{r, plainResults(r)}, {experiments.Results{}, plainResults{}},
		{m, plainMetric(m)}, {experiments.MetricResult{}, plainMetric{}},
		{rec, plainRecommendation(rec)}, {experiments.Recommendation{}, plainRecommendation{}},
	} {
		got, err := json.Marshal(c.v)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := json.Marshal(c.plain)
		if string(got) != string(want) {
			t.Errorf("%T encodes as\n%s\nwant\n%s", c.v, got, want)
		}
	}
}
