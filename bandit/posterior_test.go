package bandit_test

import (
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/liftlab/lift/bandit"
)

func TestBetaUpdate(t *testing.T) {
	got := bandit.Beta{A: 1, B: 1}.Update(bandit.Counts{Exposures: 100, Conversions: 12})
	if want := (bandit.Beta{A: 13, B: 89}); got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	if m := got.Mean(); math.Abs(m-13.0/102) > 1e-15 {
		t.Errorf("mean %v, want 13/102", m)
	}
}

func TestBetaInterval(t *testing.T) {
	tests := []struct {
		b      bandit.Beta
		lo, hi float64
	}{
		{bandit.Beta{A: 1, B: 1}, 0.025, 0.975},
		{bandit.Beta{A: 2, B: 1}, math.Sqrt(0.025), math.Sqrt(0.975)}, // CDF x²
		// mpmath: findroot(lambda x: betainc(13, 89, 0, x, regularized=True) - q, bracket)
		{bandit.Beta{A: 13, B: 89}, 0.07035018147341375, 0.1983450632635714},
	}
	for _, tt := range tests {
		lo, hi := tt.b.Interval(0.95)
		if math.Abs(lo-tt.lo) > 1e-9 || math.Abs(hi-tt.hi) > 1e-9 {
			t.Errorf("%+v: interval [%.12f, %.12f], want [%.12f, %.12f]", tt.b, lo, hi, tt.lo, tt.hi)
		}
	}
}

// TestNormalUpdateConjugate checks that updating in two steps equals updating once
// with the pooled data, the defining property of a conjugate update.
func TestNormalUpdateConjugate(t *testing.T) {
	prior := bandit.NormalInvGamma{Mu: 10, Kappa: 1, A: 0.5, B: 2}
	first := bandit.Counts{Exposures: 3, Sum: 3 + 5 + 10, SumSq: 9 + 25 + 100}
	second := bandit.Counts{Exposures: 2, Sum: 0 + 40, SumSq: 1600}
	both := bandit.Counts{Exposures: 5, Sum: first.Sum + second.Sum, SumSq: first.SumSq + second.SumSq}
	stepwise := prior.Update(first).Update(second)
	once := prior.Update(both)
	if diff := cmp.Diff(once, stepwise, cmpopts.EquateApprox(1e-12, 0)); diff != "" {
		t.Errorf("stepwise update differs (-once +stepwise):\n%s", diff)
	}
}

// TestNormalLargeSample checks that with much data the posterior is the classical
// answer: the sample mean ± 1.96 standard errors.
func TestNormalLargeSample(t *testing.T) {
	const n, mean, sd = 1e6, 30.0, 12.0
	c := bandit.Counts{Exposures: n, Sum: n * mean, SumSq: n * (sd*sd + mean*mean)}
	post := bandit.NormalInvGamma{Mu: 0, Kappa: 1, A: 0.5, B: 1}.Update(c)
	if m := post.Mean(); math.Abs(m-mean) > 1e-4 {
		t.Errorf("mean %v, want %v", m, mean)
	}
	lo, hi := post.Interval(0.95)
	half := 1.959964 * sd / math.Sqrt(n)
	if math.Abs(lo-(mean-half)) > 1e-4 || math.Abs(hi-(mean+half)) > 1e-4 {
		t.Errorf("interval [%v, %v], want %v ± %v", lo, hi, mean, half)
	}
}

// TestSampleMoments checks the samplers against the posteriors' means and variances
// with 200,000 seeded draws, within 5 standard errors of the sample mean.
func TestSampleMoments(t *testing.T) {
	tests := []struct {
		post           bandit.Posterior
		mean, variance float64
	}{
		{bandit.Beta{A: 3, B: 7}, 0.3, 21.0 / (100 * 11)},
		{bandit.Beta{A: 0.5, B: 0.5}, 0.5, 0.125},
		// Student t with ν = 2A = 10, scale² = B/(A·Kappa) = 0.4: variance 0.4·10/8.
		{bandit.NormalInvGamma{Mu: 5, Kappa: 10, A: 5, B: 20}, 5, 0.5},
	}
	const n = 200_000
	for _, tt := range tests {
		r := newTestRand(3)
		var sum, sumSq float64
		for range n {
			x := tt.post.Sample(r)
			sum += x
			sumSq += x * x
		}
		mean := sum / n
		variance := sumSq/n - mean*mean
		if se := math.Sqrt(tt.variance / n); math.Abs(mean-tt.mean) > 5*se {
			t.Errorf("%+v: mean %v, want %v ± %v", tt.post, mean, tt.mean, 5*se)
		}
		if math.Abs(variance/tt.variance-1) > 0.03 {
			t.Errorf("%+v: variance %v, want %v within 3%%", tt.post, variance, tt.variance)
		}
	}
}

func TestShrink(t *testing.T) {
	b := bandit.Beta{A: 301, B: 701}.Shrink(100).(bandit.Beta)
	if math.Abs(b.A+b.B-100) > 1e-9 || math.Abs(b.Mean()-301.0/1002) > 1e-12 {
		t.Errorf("shrunk Beta %+v: want A+B = 100 and mean 301/1002", b)
	}
	if small := (bandit.Beta{A: 3, B: 5}); small.Shrink(100) != small {
		t.Errorf("a Beta worth less than the ESS changed")
	}
	n := bandit.NormalInvGamma{Mu: 7, Kappa: 1001, A: 500.5, B: 2002}.Shrink(100).(bandit.NormalInvGamma)
	want := bandit.NormalInvGamma{Mu: 7, Kappa: 100, A: 50, B: 2002 * 50 / 500.5}
	if diff := cmp.Diff(want, n, cmpopts.EquateApprox(1e-12, 0)); diff != "" {
		t.Errorf("shrunk Normal (-want +got):\n%s", diff)
	}
}
