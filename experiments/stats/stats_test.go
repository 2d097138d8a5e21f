package stats_test

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"strings"
	"testing"

	"github.com/liftlab/lift/experiments/stats"
)

type reference struct {
	Name          string               `json:"name"`
	Input         stats.BinomialInput  `json:"input"`
	RawTreatments []map[string]float64 `json:"treatments"`
	SRMPValue     float64              `json:"srm_p_value"`
}

// TestReference compares the engine with values computed independently with SciPy
// (testdata/make_reference.py) from 20 to 1,000,000 users per variant: lift, CI,
// p-value, their absolute counterparts and the degrees of freedom within 1e-6 (and
// p-values below 1e-6 within 1e-6 relative, which only the survival function gets),
// chance to beat control within 0.002 (the contract's tolerance; the methods differ)
// and in fact 1e-6, SRM p within 1e-6. A field the reference leaves out (no relative
// lift when the treatment's rate is 0) must be null.
func TestReference(t *testing.T) {
	data, err := os.ReadFile("testdata/reference.json")
	if err != nil {
		t.Fatal(err)
	}
	var cases []reference
	if err := json.Unmarshal(data, &cases); err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			res, err := stats.AnalyzeBinomial(c.Input, stats.DefaultOptions)
			if err != nil {
				t.Fatal(err)
			}
			if res.Variants[0].Lift != nil || res.Variants[0].ChanceToBeatControl != nil {
				t.Errorf("control has comparison fields: %+v", res.Variants[0])
			}
			for i, want := range c.RawTreatments {
				got := res.Variants[i+1]
				checkReference(t, i+1, got, want)
				// The quadrature is far better than the contract's ±0.002; keep it so.
				if c := got.ChanceToBeatControl; c == nil || math.Abs(*c-want["chance_to_beat_control"]) > 1e-6 {
					t.Errorf("variant %d chance to beat control: got %v, want %v ± 1e-6", i+1, deref(c), want["chance_to_beat_control"])
				}
			}
			if math.Abs(res.SRMPValue-c.SRMPValue) > 1e-6 {
				t.Errorf("SRM p: got %v, want %v", res.SRMPValue, c.SRMPValue)
			}
			if res.SRM != (c.SRMPValue < 0.001) {
				t.Errorf("SRM flag %v for p %v", res.SRM, c.SRMPValue)
			}
		})
	}
}

// checkReference compares a treatment's comparison fields with a reference's.
func checkReference(t *testing.T, i int, got stats.VariantResult, want map[string]float64) {
	t.Helper()
	fields := map[string]*float64{"lift": got.Lift, "ci_low": got.CILow, "ci_high": got.CIHigh, "p_value": got.PValue,
		"absolute_lift": got.AbsoluteLift, "absolute_ci_low": got.AbsoluteCILow, "absolute_ci_high": got.AbsoluteCIHigh,
		"absolute_p_value": got.AbsolutePValue, "df": got.DF}
	for name, g := range fields {
		w, ok := want[name]
		switch {
		case !ok && g != nil:
			t.Errorf("variant %d %s: got %v, want null", i, name, *g)
		case !ok:
		case g == nil:
			t.Errorf("variant %d %s: got null, want %v", i, name, w)
		case strings.HasSuffix(name, "p_value") && w < 1e-6 && math.Abs(*g-w) > 1e-6*w:
			t.Errorf("variant %d %s: got %v, want %v ± 1e-6 relative", i, name, *g, w)
		case math.Abs(*g-w) > 1e-6:
			t.Errorf("variant %d %s: got %v, want %v ± 1e-6", i, name, *g, w)
		}
	}
	if c := got.ChanceToBeatControl; c == nil || math.Abs(*c-want["chance_to_beat_control"]) > 0.002 {
		t.Errorf("variant %d chance to beat control: got %v, want %v ± 0.002", i, deref(c), want["chance_to_beat_control"])
	}
}

func deref(p *float64) any {
	if p == nil {
		return nil
	}
	return *p
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name, in, field string
	}{
		{"one variant", `{"weights":[1],"variants":[{"key":"a","users":10,"conversions":1}]}`, "variants"},
		{"weights count", `{"weights":[1],"variants":[{"key":"a","users":10},{"key":"b","users":10}]}`, "weights"},
		{"weights sum", `{"weights":[0.5,0.6],"variants":[{"key":"a","users":10},{"key":"b","users":10}]}`, "weights"},
		{"no users", `{"weights":[0.5,0.5],"variants":[{"key":"a","users":0},{"key":"b","users":10}]}`, "variants[0].users"},
		{"too many conversions", `{"weights":[0.5,0.5],"variants":[{"key":"a","users":10},{"key":"b","users":10,"conversions":11}]}`, "variants[1].conversions"},
		{"negative", `{"weights":[0.5,0.5],"variants":[{"key":"a","users":10,"conversions":-1},{"key":"b","users":10}]}`, "variants[0].conversions"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var in stats.BinomialInput
			if err := json.Unmarshal([]byte(tt.in), &in); err != nil {
				t.Fatal(err)
			}
			_, err := stats.AnalyzeBinomial(in, stats.DefaultOptions)
			ie, ok := err.(*stats.InputError)
			if !ok || ie.Field != tt.field {
				t.Errorf("got %v, want an error naming %s", err, tt.field)
			}
		})
	}
}

func TestZeroControlRate(t *testing.T) {
	res, err := stats.AnalyzeBinomial(stats.BinomialInput{Weights: []float64{0.5, 0.5},
		Variants: []stats.VariantCounts{{Key: "a", Users: 100}, {Key: "b", Users: 100, Conversions: 3}}}, stats.DefaultOptions)
	if err != nil {
		t.Fatal(err)
	}
	v := res.Variants[1]
	if v.Lift != nil || v.ChanceToBeatControl == nil || *v.ChanceToBeatControl < 0.9 || v.AbsoluteLift == nil {
		t.Errorf("undefined relative lift should be null with the rest present: %+v", v)
	}
}

func TestAdjust(t *testing.T) {
	p := []float64{0.01, 0.04, 0.03, 0.005}
	// Holm: sorted 0.005·4=0.02, 0.01·3=0.03, 0.03·2=0.06, 0.04·1=0.04→0.06 (monotone).
	// BH: sorted desc 0.04·4/4=0.04, 0.03·4/3=0.04, 0.01·4/2=0.02, 0.005·4/1=0.02.
	wantHolm := []float64{0.03, 0.06, 0.06, 0.02}
	wantBH := []float64{0.02, 0.04, 0.04, 0.02}
	for name, tc := range map[stats.Correction][]float64{stats.Holm: wantHolm, stats.BenjaminiHochberg: wantBH, stats.NoCorrection: p} {
		got := stats.Adjust(p, name)
		for i := range p {
			if math.Abs(got[i]-tc[i]) > 1e-12 {
				t.Errorf("%s: got %v, want %v", name, got, tc)
				break
			}
		}
	}
}

// TestReferenceMeans checks value metrics against SciPy on simulated revenue and net
// refunds (testdata/make_reference_means.py), from 20 to 1,000,000 users per
// variant, within 1e-6 as TestReference does.
func TestReferenceMeans(t *testing.T) {
	data, err := os.ReadFile("testdata/reference_means.json")
	if err != nil {
		t.Fatal(err)
	}
	var cases []struct {
		Name    string
		Moments []struct {
			N, Sum float64
			SumSq  float64 `json:"sumsq"`
		}
		Treatments []map[string]float64
	}
	if err := json.Unmarshal(data, &cases); err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			var ms []stats.Moments
			var keys []string
			for i, m := range c.Moments {
				ms = append(ms, stats.Moments{N: m.N, Sum: m.Sum, SumSq: m.SumSq})
				keys = append(keys, fmt.Sprint("v", i))
			}
			res, err := stats.AnalyzeMeans(keys, ms, stats.DefaultOptions)
			if err != nil {
				t.Fatal(err)
			}
			for i, want := range c.Treatments {
				got := res[i+1]
				checkReference(t, i+1, got, want)
				if c := got.ChanceToBeatControl; c == nil || math.Abs(*c-want["chance_to_beat_control"]) > 1e-6 {
					t.Errorf("variant %d chance to beat control: got %v, want %v ± 1e-6", i+1, deref(c), want["chance_to_beat_control"])
				}
			}
		})
	}
}

// TestWorkedExamples checks CUPED and the confidence sequence against worked examples
// computed in plain Python (testdata/make_worked_examples.py): CUPED from the users'
// own (x, y) pairs, which the Go code receives only as sums, and the sequence's bounds
// and p-value from the published formula; within 1e-9.
func TestWorkedExamples(t *testing.T) {
	data, err := os.ReadFile("testdata/worked_examples.json")
	if err != nil {
		t.Fatal(err)
	}
	var w struct {
		CUPED struct {
			Users     [][][2]float64
			Theta     float64
			Estimates []struct{ Mean, Var float64 }
		}
		Sequences []struct {
			Estimate, Variance, N, Alpha, Tuning float64
			Low, High                            float64
			PValue                               float64 `json:"p_value"`
		}
	}
	if err := json.Unmarshal(data, &w); err != nil {
		t.Fatal(err)
	}
	near := func(what string, got, want float64) {
		t.Helper()
		if math.Abs(got-want) > 1e-9 {
			t.Errorf("%s: got %.12g, want %.12g ± 1e-9", what, got, want)
		}
	}
	var vs []stats.CovMoments
	for _, us := range w.CUPED.Users {
		var m stats.CovMoments
		for _, u := range us {
			addUser(&m, u[0], u[1])
		}
		vs = append(vs, m)
	}
	est, theta := stats.CUPED(vs)
	near("θ", theta, w.CUPED.Theta)
	if len(est) != len(w.CUPED.Estimates) {
		t.Fatalf("%d estimates, want %d", len(est), len(w.CUPED.Estimates))
	}
	for i, want := range w.CUPED.Estimates {
		near(fmt.Sprintf("variant %d adjusted mean", i), est[i].Mean, want.Mean)
		near(fmt.Sprintf("variant %d variance", i), est[i].Var, want.Var)
	}
	for _, s := range w.Sequences {
		cs := stats.ConfidenceSequence(s.Estimate, s.Variance, s.N, s.Alpha, s.Tuning)
		what := fmt.Sprintf("sequence (%v, %v, n=%v)", s.Estimate, s.Variance, s.N)
		near(what+" low", cs.Low, s.Low)
		near(what+" high", cs.High, s.High)
		near(what+" p-value", stats.SequentialPValue(s.Estimate, s.Variance, s.N, s.Alpha, s.Tuning), s.PValue)
	}
}

// addUser adds one user's pre-period metric x and outcome y to m, as ClickHouse's
// sums would.
func addUser(m *stats.CovMoments, x, y float64) {
	m.N++
	m.SumX += x
	m.SumX2 += x * x
	m.SumY += y
	m.SumY2 += y * y
	m.SumXY += x * y
}
