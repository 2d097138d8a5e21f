package bandit

import (
	"math"
	"testing"
)

// TestGammaMoments checks the sampler's mean and variance (both equal to the shape)
// for shapes on both sides of the boost at 1, within 5 standard errors.
func TestGammaMoments(t *testing.T) {
	const n = 200_000
	for _, shape := range []float64{0.1, 0.5, 1, 2.5, 40, 1e6} {
		r := newRand(7)
		g := newGammaDist(shape)
		var sum, sumSq float64
		for range n {
			x := g.rand(r)
			sum += x
			sumSq += x * x
		}
		mean := sum / n
		variance := sumSq/n - mean*mean
		// For Gamma(k) the fourth central moment is 3k² + 6k, so the sample variance
		// has a relative standard error of √((2 + 6/k)/n).
		seMean := math.Sqrt(shape / n)
		if math.Abs(mean-shape) > 5*seMean {
			t.Errorf("shape %v: mean %v, want %v ± %v", shape, mean, shape, 5*seMean)
		}
		if rel, se := math.Abs(variance/shape-1), math.Sqrt((2+6/shape)/n); rel > 5*se {
			t.Errorf("shape %v: variance %v, want %v (relative error %v > %v)", shape, variance, shape, rel, 5*se)
		}
	}
}

func TestRegIncBeta(t *testing.T) {
	tests := []struct{ a, b, x, want float64 }{
		{1, 1, 0.3, 0.3},
		{2, 1, 0.5, 0.25},                  // x²
		{1, 3, 0.2, 1 - 0.8*0.8*0.8},       // 1 − (1−x)³
		{0.5, 0.5, 0.25, 1.0 / 3},          // (2/π)·asin(√x)
		{5000, 5000, 0.5, 0.5},             // symmetry
		{2.5, 3.5, 0.4, 0.486904191526117}, // mpmath.betainc(2.5, 3.5, 0, 0.4, regularized=True)
		{30, 70, 0.25, 0.135814904283427},  // mpmath.betainc(30, 70, 0, 0.25, regularized=True)
	}
	for _, tt := range tests {
		if got := regIncBeta(tt.a, tt.b, tt.x); math.Abs(got-tt.want) > 1e-9 {
			t.Errorf("I_%v(%v, %v) = %.13f, want %.13f", tt.x, tt.a, tt.b, got, tt.want)
		}
	}
}

func TestStudentTQuantile(t *testing.T) {
	// Textbook two-sided 95% critical values.
	tests := []struct{ nu, want float64 }{{1, 12.7062047}, {2, 4.3026527}, {10, 2.2281389}, {1e6, 1.9599663}}
	for _, tt := range tests {
		if got := studentTQuantile(tt.nu, 0.975); math.Abs(got-tt.want) > 1e-6 {
			t.Errorf("t_0.975(%v) = %.7f, want %.7f", tt.nu, got, tt.want)
		}
	}
}
