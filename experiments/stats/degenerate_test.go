package stats_test

import (
	"math"
	"testing"

	"gonum.org/v1/gonum/stat/distuv"

	"github.com/liftlab/lift/experiments/stats"
)

// sums adds values one by one, as a database's sum() does, into Moments.
func sums(values ...float64) stats.Moments {
	var m stats.Moments
	for _, v := range values {
		m.N++
		m.Sum += v
		m.SumSq += v * v
	}
	return m
}

// repeat returns n copies of each value, in turn.
func repeat(n int, values ...float64) []float64 {
	var out []float64
	for i := range n {
		out = append(out, values[i%len(values)])
	}
	return out
}

// TestDegenerate: data that cannot support an interval gets none — no lift, interval,
// p-value, chance to beat control or expected loss — and the reason. Each case is one
// the normal intervals reported as certainty (issue: −100% [−1, −1], p = 0 for one
// user per arm; +10% [0.1, 0.1], p = 0 for a revenue that does not vary; p = 0 for
// values around 1e12 whose spread the sum of squares lost).
func TestDegenerate(t *testing.T) {
	conversion := func(nc, xc, nt, xt float64) stats.VariantResult {
		t.Helper()
		res, err := stats.AnalyzeBinomial(stats.BinomialInput{Weights: []float64{0.5, 0.5},
			Variants: []stats.VariantCounts{{Key: "c", Users: nc, Conversions: xc}, {Key: "t", Users: nt, Conversions: xt}}}, stats.DefaultOptions)
		if err != nil {
			t.Fatal(err)
		}
		return res.Variants[1]
	}
	value := func(c, tr stats.Moments) stats.VariantResult {
		t.Helper()
		res, err := stats.AnalyzeMeans([]string{"c", "t"}, []stats.Moments{c, tr}, stats.DefaultOptions)
		if err != nil {
			t.Fatal(err)
		}
		return res[1]
	}
	big := func(offset float64) stats.Moments { return sums(repeat(1000, offset, offset+1, offset+2, offset+3)...) }
	tests := []struct {
		name   string
		got    stats.VariantResult
		reason string
	}{
		{"one user per arm, 1 vs 0 conversions", conversion(1, 1, 1, 0), stats.ReasonTooFewUsers},
		{"one user in the treatment", conversion(1000, 100, 1, 1), stats.ReasonTooFewUsers},
		{"nobody converts in either arm", conversion(1000, 0, 1000, 0), stats.ReasonNoConversionVar},
		{"everyone converts in both arms", conversion(500, 500, 400, 400), stats.ReasonNoConversionVar},
		{"revenue 10 vs 11 for every user", value(sums(repeat(1000, 10)...), sums(repeat(1000, 11)...)), stats.ReasonNoValueVar},
		{"values around 1e12, spread lost", value(big(1e12), big(1e12+1)), stats.ReasonVarianceLost},
		{"control around 1e12 only", value(big(1e12), sums(repeat(1000, 5, 9)...)), stats.ReasonVarianceLost},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := tt.got
			if v.Reason != tt.reason {
				t.Errorf("reason %q, want %q", v.Reason, tt.reason)
			}
			for name, p := range map[string]*float64{"lift": v.Lift, "ci_low": v.CILow, "ci_high": v.CIHigh, "p_value": v.PValue,
				"chance": v.ChanceToBeatControl, "absolute_lift": v.AbsoluteLift, "absolute_p_value": v.AbsolutePValue,
				"expected_loss": v.ExpectedLoss, "df": v.DF} {
				if p != nil {
					t.Errorf("%s = %v, want null", name, *p)
				}
			}
		})
	}
	// The same spread around 1e4 is resolved: the comparison is there, with the
	// variance of 0, 1, 2, 3.
	v := value(big(1e4), big(1e4+1))
	if v.Reason != "" || v.PValue == nil {
		t.Fatalf("values around 1e4: %+v", v)
	}
	want := 2 * (1.25 * 1000 / 999) / 1000 // two arms' s²/n
	q := distuv.StudentsT{Mu: 0, Sigma: 1, Nu: *v.DF}.Quantile(0.975)
	if got := (*v.AbsoluteCIHigh - *v.AbsoluteCILow) / 2 / q; math.Abs(got*got-want)/want > 1e-9 {
		t.Errorf("values around 1e4: variance of the difference %v, want %v", got*got, want)
	}
}

// TestNegativeControlMean: a value metric whose control mean is negative (net
// refunds) gets the lift's sign from the difference: −0.5 → −0.2 is +60%, with the
// chance to beat control near 1 and the interval around +60%.
func TestNegativeControlMean(t *testing.T) {
	c := sums(repeat(2000, -2.5, 1.5)...)  // mean −0.5
	tr := sums(repeat(2000, -2.2, 1.8)...) // mean −0.2
	res, err := stats.AnalyzeMeans([]string{"c", "t"}, []stats.Moments{c, tr}, stats.DefaultOptions)
	if err != nil {
		t.Fatal(err)
	}
	v := res[1]
	if v.Lift == nil || math.Abs(*v.Lift-0.6) > 1e-9 || *v.CILow > 0.6 || *v.CIHigh < 0.6 || *v.CILow <= 0 {
		t.Errorf("lift %v [%v, %v], want +0.6 inside a positive interval", deref(v.Lift), deref(v.CILow), deref(v.CIHigh))
	}
	if *v.ChanceToBeatControl < 0.99 || *v.AbsoluteLift <= 0 {
		t.Errorf("chance to beat control %v, absolute lift %v: should agree with the lift", *v.ChanceToBeatControl, *v.AbsoluteLift)
	}
	// And a worse treatment is negative.
	res, _ = stats.AnalyzeMeans([]string{"c", "t"}, []stats.Moments{tr, c}, stats.DefaultOptions)
	if l := res[1].Lift; l == nil || *l >= 0 {
		t.Errorf("−0.2 → −0.5: lift %v, want negative", deref(l))
	}
}

// TestTinyPValues: p-values far below 1e-15 come out as the numbers they are, not 0
// (the survival function, not 1 − CDF).
func TestTinyPValues(t *testing.T) {
	res, err := stats.AnalyzeBinomial(stats.BinomialInput{Weights: []float64{0.5, 0.5},
		Variants: []stats.VariantCounts{{Key: "c", Users: 1e6, Conversions: 1e4}, {Key: "t", Users: 1e6, Conversions: 1.3e4}}}, stats.DefaultOptions)
	if err != nil {
		t.Fatal(err)
	}
	if p := *res.Variants[1].PValue; !(p > 0 && p < 1e-50) {
		t.Errorf("p-value %v, want a positive number below 1e-50", p)
	}
}

// TestVarianceFromSums: from sums that hold their values exactly (multiples of 0.5
// below 2^53), the variance agrees with one computed from the values (two-pass) to
// 1e-12 relative however large the mean, where Σy² − (Σy)²/n in plain arithmetic
// is off by 1e-7 at a mean of 1e5; a spread below ResolvableSpread of the mean is
// reported as lost.
func TestVarianceFromSums(t *testing.T) {
	for _, offset := range []float64{0, 1e3, 1e5, -1e5} {
		values := make([]float64, 0, 10000)
		for i := range 10000 {
			values = append(values, offset+float64(i%7)*1.5-3)
		}
		mean := 0.0
		for _, v := range values {
			mean += v
		}
		mean /= float64(len(values))
		ss := 0.0
		for _, v := range values {
			ss += (v - mean) * (v - mean)
		}
		want := ss / float64(len(values)-1)
		got, resolved := sums(values...).Variance()
		if !resolved || math.Abs(got-want)/want > 1e-12 {
			t.Errorf("offset %g: variance %v (resolved %v), want %v", offset, got, resolved, want)
		}
	}
	if _, resolved := sums(repeat(10000, 1e9, 1e9+1)...).Variance(); resolved {
		t.Error("a spread of 1 around 1e9 should be lost to rounding")
	}
	if v, resolved := sums(repeat(100, 0.1)...).Variance(); v != 0 {
		t.Errorf("a constant 0.1: variance %v (resolved %v), want 0", v, resolved)
	}
}
