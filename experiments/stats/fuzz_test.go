package stats_test

import (
	"encoding/json"
	"errors"
	"math"
	"testing"

	"github.com/liftlab/lift/experiments/stats"
)

// edge are the numbers every fuzz target of results starts from: the non-finite
// ones, the largest and smallest, negative zero, the sizes that broke formatting
// (3e15, 1e15), a rounding boundary and the largest int64.
var edge = []float64{math.Inf(1), math.Inf(-1), math.NaN(), 1e308, 5e-324, math.Copysign(0, -1), 3e15, 1e15, 999.995, math.MaxInt64}

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

// checkVariants fails unless every comparison present is a finite, consistent
// number and every variant lacking one while its inputs were broken says why.
func checkVariants(t *testing.T, vs []stats.VariantResult) {
	t.Helper()
	for i, v := range vs {
		for name, p := range map[string]*float64{"lift": v.Lift, "ci_low": v.CILow, "ci_high": v.CIHigh, "p_value": v.PValue,
			"chance": v.ChanceToBeatControl, "absolute_lift": v.AbsoluteLift, "expected_loss": v.ExpectedLoss,
			"absolute_ci_low": v.AbsoluteCILow, "absolute_ci_high": v.AbsoluteCIHigh, "absolute_p_value": v.AbsolutePValue, "df": v.DF} {
			if p != nil && !finite(*p) {
				t.Fatalf("variant %d: %s = %v", i, name, *p)
			}
		}
		if v.Lift != nil && (*v.CILow > *v.CIHigh || *v.PValue < 0 || *v.PValue > 1) {
			t.Fatalf("variant %d: interval [%v, %v], p %v", i, *v.CILow, *v.CIHigh, *v.PValue)
		}
		if c := v.ChanceToBeatControl; c != nil && (*c < 0 || *c > 1) {
			t.Fatalf("variant %d: chance %v", i, *c)
		}
		if v.AbsoluteLift != nil && (*v.AbsoluteCILow > *v.AbsoluteCIHigh || *v.AbsolutePValue < 0 || *v.AbsolutePValue > 1) {
			t.Fatalf("variant %d: absolute interval [%v, %v], p %v", i, *v.AbsoluteCILow, *v.AbsoluteCIHigh, *v.AbsolutePValue)
		}
		if v.DF != nil && !(*v.DF > 0) {
			t.Fatalf("variant %d: %v degrees of freedom", i, *v.DF)
		}
		// A reason means no comparison, except that a mean of 0 takes away only the
		// relative one.
		zeroMean := v.Reason == stats.ReasonZeroControl || v.Reason == stats.ReasonZeroTreatment
		if i > 0 && v.Reason != "" && (v.Lift != nil || v.AbsoluteLift != nil && !zeroMean) {
			t.Fatalf("variant %d: a reason (%q) and a comparison", i, v.Reason)
		}
	}
	data, err := json.Marshal(vs)
	if err != nil || !json.Valid(data) {
		t.Fatalf("JSON: %s, %v", data, err)
	}
}

// FuzzAnalyzeMeans: any moments give finite comparisons or none with a reason, never
// ±Inf or NaN, and encode as valid JSON; moments that are not finite get no
// comparison at all.
func FuzzAnalyzeMeans(f *testing.F) {
	f.Add(100.0, 2000.0, 50000.0, 100.0, 2500.0, 70000.0, false)
	for _, x := range edge {
		f.Add(100.0, 2000.0, 50000.0, 100.0, x, x*x, false)
		f.Add(100.0, x, 50000.0, 100.0, 2500.0, 70000.0, true)
		f.Add(x, 2000.0, 50000.0, 100.0, 2500.0, 70000.0, false)
	}
	f.Fuzz(func(t *testing.T, n0, s0, q0, n1, s1, q1 float64, sequential bool) {
		o := stats.DefaultOptions
		o.Sequential = sequential
		res, err := stats.AnalyzeMeans([]string{"control", "treat"}, []stats.Moments{{N: n0, Sum: s0, SumSq: q0}, {N: n1, Sum: s1, SumSq: q1}}, o)
		if err != nil {
			if !errors.As(err, new(*stats.InputError)) {
				t.Fatalf("error %v is not an InputError", err)
			}
			return
		}
		checkVariants(t, res)
		if !finite(s0) || !finite(q0) || !finite(s1) || !finite(q1) {
			if res[1].Lift != nil || res[1].Reason == "" {
				t.Fatalf("moments %v %v %v %v gave a comparison: %+v", s0, q0, s1, q1, res[1])
			}
		}
	})
}

// FuzzAnalyzeBinomial: any counts the input validation accepts give finite
// comparisons or none with a reason, and the result (what `lift analyze` prints)
// encodes as valid JSON.
func FuzzAnalyzeBinomial(f *testing.F) {
	f.Add(1000.0, 100.0, 1000.0, 150.0, 0.5, false)
	for _, x := range edge {
		f.Add(x, 1.0, 1000.0, 150.0, 0.5, false)
		f.Add(x, x, x, x, 0.5, true)
	}
	f.Fuzz(func(t *testing.T, n0, x0, n1, x1, w float64, sequential bool) {
		o := stats.DefaultOptions
		o.Sequential = sequential
		in := stats.BinomialInput{Weights: []float64{w, 1 - w}, Variants: []stats.VariantCounts{{Key: "a", Users: n0, Conversions: x0}, {Key: "b", Users: n1, Conversions: x1}}}
		res, err := stats.AnalyzeBinomial(in, o)
		if err != nil {
			return // Validate names the field; FuzzAnalyze in cmd/lift checks the message
		}
		checkVariants(t, res.Variants)
		data, err := json.Marshal(res)
		if err != nil || !json.Valid(data) {
			t.Fatalf("JSON: %s, %v", data, err)
		}
	})
}

// FuzzVariantResultJSON: any float64 in any field encodes as valid JSON: null where
// it is not finite, the number itself (read back exactly) where it is.
func FuzzVariantResultJSON(f *testing.F) {
	for _, x := range edge {
		f.Add(x, x, x, x, x)
		f.Add(1000.0, x, 0.1, x, 0.5)
	}
	f.Fuzz(func(t *testing.T, users, sum, value, lift, p float64) {
		v := stats.VariantResult{Key: "k", Users: users, Sum: &sum, Value: value, Lift: &lift, CILow: &lift, CIHigh: &p, PValue: &p,
			ChanceToBeatControl: &p, AbsoluteLift: &sum, ExpectedLoss: &value, Reason: "r"}
		data, err := json.Marshal(v)
		if err != nil || !json.Valid(data) {
			t.Fatalf("JSON: %s, %v", data, err)
		}
		back := numbers(t, data)
		for name, want := range map[string]float64{"users": users, "sum": sum, "value": value, "lift": lift, "ci_low": lift,
			"ci_high": p, "p_value": p, "chance_to_beat_control": p, "absolute_lift": sum, "expected_loss": value} {
			got := back[name]
			switch {
			case !finite(want) && got != nil:
				t.Fatalf("%s: %v encoded as %v, want null", name, want, *got)
			case finite(want) && (got == nil || *got != want):
				t.Fatalf("%s: %v read back as %v", name, want, got)
			}
		}
	})
}

// numbers reads the number (or null: nil) of each member of a JSON object.
func numbers(t *testing.T, data []byte) map[string]*float64 {
	t.Helper()
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	out := map[string]*float64{}
	for k, r := range raw {
		var x *float64
		if json.Unmarshal(r, &x) == nil {
			out[k] = x
		}
	}
	return out
}

// TestJSONMatchesPlainEncoding: for finite numbers the encoders write exactly what
// encoding/json writes for the types without them, so their field lists cannot drift
// from the types'.
func TestJSONMatchesPlainEncoding(t *testing.T) {
	x, y := 0.25, -3e15
	v := stats.VariantResult{Key: "k", Users: 10, Conversions: &x, Sum: &y, Value: 0.5, Lift: &x, CILow: &y, CIHigh: &x, PValue: &x,
		ChanceToBeatControl: &x, AbsoluteLift: &y, AbsoluteCILow: &y, AbsoluteCIHigh: &x, AbsolutePValue: &x, ExpectedLoss: &x,
		DF: &x, ValueCILow: &y, ValueCIHigh: &x, PBest: &x, NaiveValue: &y, Reason: "why", Variance: 3}
	type plainVariant stats.VariantResult
	same(t, v, plainVariant(v))
	same(t, stats.VariantResult{Key: "c", Users: 1}, plainVariant(stats.VariantResult{Key: "c", Users: 1}))
	r := stats.BinomialResult{Variants: []stats.VariantResult{v}, SRMPValue: 0.3, SRM: true}
	type plainBinomial stats.BinomialResult
	same(t, r, plainBinomial(r))
	a := stats.Result{Variants: []stats.VariantResult{v}, SRMPValue: 0.3, SRM: true, CUPED: true, Theta: 0.7}
	type plainResult stats.Result
	same(t, a, plainResult(a))
}

func same(t *testing.T, v, plain any) {
	t.Helper()
	got, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	want, err := json.Marshal(plain)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Errorf("%T encodes as\n%s\nwant\n%s", v, got, want)
	}
}
