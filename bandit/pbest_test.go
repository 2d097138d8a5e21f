package bandit_test

import (
	"math"
	"slices"
	"testing"

	"github.com/liftlab/lift/bandit"
)

func TestProbGreaterKnownValues(t *testing.T) {
	tests := []struct {
		x, y bandit.Beta
		want float64
	}{
		{bandit.Beta{A: 1, B: 1}, bandit.Beta{A: 1, B: 1}, 0.5},
		{bandit.Beta{A: 2, B: 1}, bandit.Beta{A: 1, B: 1}, 2.0 / 3}, // ∫ 2x·x dx
		{bandit.Beta{A: 1, B: 2}, bandit.Beta{A: 1, B: 1}, 1.0 / 3},
		{bandit.Beta{A: 500, B: 500}, bandit.Beta{A: 500, B: 500}, 0.5},
	}
	for _, tt := range tests {
		got, ok := bandit.ProbGreater(tt.x, tt.y)
		if !ok || math.Abs(got-tt.want) > 1e-12 {
			t.Errorf("P(%+v > %+v) = %v, %v; want %v", tt.x, tt.y, got, ok, tt.want)
		}
	}
}

// TestProbGreaterIntegral checks the closed form, whichever parameter it sums over,
// against P(X > Y) = ∫ f_X(x)·F_Y(x) dx computed by Simpson's rule.
func TestProbGreaterIntegral(t *testing.T) {
	tests := []struct{ x, y bandit.Beta }{
		{bandit.Beta{A: 13, B: 89}, bandit.Beta{A: 10, B: 92}},           // x.A smallest
		{bandit.Beta{A: 40.5, B: 60.5}, bandit.Beta{A: 5, B: 20.5}},      // only y.A
		{bandit.Beta{A: 40.5, B: 60.5}, bandit.Beta{A: 30.5, B: 70}},     // only y.B
		{bandit.Beta{A: 40.5, B: 3}, bandit.Beta{A: 30.5, B: 10.5}},      // only x.B
		{bandit.Beta{A: 4001, B: 96001}, bandit.Beta{A: 4101, B: 95901}}, // large counts
	}
	for _, tt := range tests {
		got, ok := bandit.ProbGreater(tt.x, tt.y)
		want := integrateProbGreater(tt.x, tt.y)
		if !ok || math.Abs(got-want) > 1e-7 {
			t.Errorf("P(%+v > %+v) = %v, %v; integral %v", tt.x, tt.y, got, ok, want)
		}
	}
	if _, ok := bandit.ProbGreater(bandit.Beta{A: 1.5, B: 2.5}, bandit.Beta{A: 0.5, B: 3.5}); ok {
		t.Error("closed form claimed without an integer parameter")
	}
	if _, ok := bandit.ProbGreater(bandit.Beta{A: 2e7, B: 3e7}, bandit.Beta{A: 2e7, B: 3e7}); ok {
		t.Error("closed form claimed for 2·10^7 terms")
	}
}

// integrateProbGreater integrates f_X·F_Y over X's central range (±12 standard
// deviations) with Simpson's rule, accumulating F_Y along the way by the same rule.
func integrateProbGreater(x, y bandit.Beta) float64 {
	const steps = 20_000
	sd := func(b bandit.Beta) float64 {
		n := b.A + b.B
		return math.Sqrt(b.A * b.B / (n * n * (n + 1)))
	}
	lo := math.Max(0, math.Min(x.Mean()-12*sd(x), y.Mean()-12*sd(y)))
	hi := math.Min(1, math.Max(x.Mean()+12*sd(x), y.Mean()+12*sd(y)))
	density := func(b bandit.Beta) func(float64) float64 {
		la, _ := math.Lgamma(b.A)
		lb, _ := math.Lgamma(b.B)
		lab, _ := math.Lgamma(b.A + b.B)
		return func(v float64) float64 {
			if v <= 0 || v >= 1 {
				return 0
			}
			return math.Exp((b.A-1)*math.Log(v) + (b.B-1)*math.Log1p(-v) + lab - la - lb)
		}
	}
	fX, fY := density(x), density(y)
	h := (hi - lo) / steps
	cdfY, sum := 0.0, 0.0
	for i := 0; i < steps; i++ {
		a, m, b := lo+float64(i)*h, lo+(float64(i)+0.5)*h, lo+float64(i+1)*h
		cdfMid := cdfY + h/24*(5*fY(a)+8*fY(m)-fY(b)) // ∫_a^m f_Y, quadratic fit
		cdfEnd := cdfY + h/6*(fY(a)+4*fY(m)+fY(b))
		sum += h / 6 * (fX(a)*cdfY + 4*fX(m)*cdfMid + fX(b)*cdfEnd)
		cdfY = cdfEnd
	}
	return sum
}

func TestProbBestDeterministic(t *testing.T) {
	posts := []bandit.Posterior{bandit.Beta{A: 11, B: 91}, bandit.Beta{A: 14, B: 88}, bandit.Beta{A: 9, B: 93}}
	a := bandit.ProbBest(posts, 10_000, 42)
	if b := bandit.ProbBest(posts, 10_000, 42); !slices.Equal(a, b) {
		t.Errorf("same seed, different answers: %v and %v", a, b)
	}
	if c := bandit.ProbBest(posts, 10_000, 43); slices.Equal(a, c) {
		t.Errorf("different seeds, identical answers %v", a)
	}
	sum := 0.0
	for _, p := range a {
		sum += p
	}
	if math.Abs(sum-1) > 1e-12 || !(a[1] > a[0] && a[0] > a[2]) {
		t.Errorf("P(best) %v: want a distribution ordered like the means", a)
	}
}
