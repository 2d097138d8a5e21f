package bandit_test

import (
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/liftlab/lift/bandit"
)

// FuzzReportJSON: any float64 in any number of a report encodes as valid JSON, null
// where it is not finite and the number itself where it is.
func FuzzReportJSON(f *testing.F) {
	for _, x := range []float64{math.Inf(1), math.Inf(-1), math.NaN(), 1e308, 5e-324, math.Copysign(0, -1), 3e15, 1e15, 999.995, math.MaxInt64} {
		f.Add(x, x, x, x)
		f.Add(0.5, x, 20.0, x)
	}
	f.Fuzz(func(t *testing.T, weight, mean, exposures, ipw float64) {
		arm := bandit.ArmReport{Variant: "a", Weight: weight, PBest: weight, Posterior: bandit.Summary{Mean: mean, Low: mean, High: ipw},
			Exposures: exposures, NaiveMean: ipw}
		rep := bandit.Report{Experiment: "x", WinnerThreshold: weight, Segments: []bandit.SegmentReport{{Arms: []bandit.ArmReport{arm, arm},
			Regret: ipw, History: []bandit.HistoryPoint{{At: time.Unix(0, 0).UTC(), Weights: []float64{weight, mean}}}}}}
		data, err := json.Marshal(rep)
		if err != nil || !json.Valid(data) {
			t.Fatalf("JSON: %s, %v", data, err)
		}
		var back struct {
			WinnerThreshold *float64 `json:"winner_threshold"`
			Segments        []struct {
				Regret *float64 `json:"estimated_regret"`
				Arms   []struct {
					Weight, Exposures *float64
					Posterior         struct{ Mean, High *float64 }
					NaiveMean         *float64 `json:"naive_mean"`
				}
				History []struct{ Weights []*float64 }
			}
		}
		if err := json.Unmarshal(data, &back); err != nil {
			t.Fatal(err)
		}
		s, a := back.Segments[0], back.Segments[0].Arms[1]
		for _, c := range []struct {
			name string
			got  *float64
			want float64
		}{
			{"winner_threshold", back.WinnerThreshold, weight}, {"regret", s.Regret, ipw}, {"weight", a.Weight, weight},
			{"exposures", a.Exposures, exposures}, {"posterior mean", a.Posterior.Mean, mean}, {"posterior high", a.Posterior.High, ipw},
			{"naive_mean", a.NaiveMean, ipw}, {"history weight", s.History[0].Weights[1], mean},
		} {
			finite := !math.IsNaN(c.want) && !math.IsInf(c.want, 0)
			if finite != (c.got != nil) || c.got != nil && *c.got != c.want {
				t.Fatalf("%s: %v read back as %v\n%s", c.name, c.want, c.got, data)
			}
		}
	})
}

// TestReportJSONMatchesPlainEncoding: for finite numbers the encoders write exactly
// what encoding/json writes for the types without them, so their field lists cannot
// drift from the types'.
func TestReportJSONMatchesPlainEncoding(t *testing.T) {
	arm := bandit.ArmReport{Variant: "a", Weight: 0.4, PBest: 0.6, Posterior: bandit.Summary{Mean: 1, Low: 0.5, High: 1.5}, Exposures: 10, NaiveMean: 0.9}
	h := bandit.HistoryPoint{At: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), Weights: []float64{0.4, 0.6}}
	s := bandit.SegmentReport{Segment: "new", Version: 3, ComputedAt: h.At, BurnIn: true, Arms: []bandit.ArmReport{arm}, Regret: 2.5, History: []bandit.HistoryPoint{h}}
	r := bandit.Report{Experiment: "x", Winner: "a", WinnerThreshold: 0.95, Segments: []bandit.SegmentReport{s}}
	type plainArm bandit.ArmReport
	type plainHistory bandit.HistoryPoint
	type plainSegment bandit.SegmentReport
	type plainReport bandit.Report
	for _, c := range []struct{ v, plain any }{
		{arm, plainArm(arm)}, {bandit.ArmReport{}, plainArm{}}, {h, plainHistory(h)}, {bandit.HistoryPoint{}, plainHistory{}},
		{s, plainSegment(s)}, {bandit.SegmentReport{}, plainSegment{}}, {r, plainReport(r)}, {bandit.Report{}, plainReport{}},
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
