package bandit

import (
	"math"
	"math/rand/v2"
)

// The distributions are written out here rather than taken from gonum because bandit
// keeps to the standard library and the simulator's inner loop needs a gamma sampler
// that does not allocate.

// gammaDist samples Gamma(shape, 1) by Marsaglia and Tsang's method ("A simple method
// for generating gamma variables", 2000): one normal and one uniform per try, with about
// 1.03 tries per draw whatever the shape, so the cost does not grow with the counts.
// Its constants are computed once, for callers drawing many times from one shape.
type gammaDist struct {
	d, c float64
	// invShape is 1/shape when shape < 1, and 0 otherwise: the squeeze needs a shape of
	// at least 1, and Gamma(a) = Gamma(a+1)·U^(1/a) (section 6 of the paper).
	invShape float64
}

func newGammaDist(shape float64) gammaDist {
	var g gammaDist
	if shape < 1 {
		g.invShape = 1 / shape
		shape++
	}
	g.d = shape - 1.0/3
	g.c = 1 / math.Sqrt(9*g.d)
	return g
}

func (g gammaDist) rand(r *rand.Rand) float64 {
	for {
		x := r.NormFloat64()
		v := 1 + g.c*x
		if v <= 0 {
			continue
		}
		v = v * v * v
		u := r.Float64()
		x2 := x * x
		if u < 1-0.0331*x2*x2 || math.Log(u) < 0.5*x2+g.d*(1-v+math.Log(v)) {
			if g.invShape != 0 {
				return g.d * v * math.Pow(r.Float64(), g.invShape)
			}
			return g.d * v
		}
	}
}

// betaDist draws from Beta(a, b) as X/(X+Y) with X ~ Gamma(a), Y ~ Gamma(b).
type betaDist struct{ x, y gammaDist }

func (b betaDist) draw(r *rand.Rand) float64 {
	x := b.x.rand(r)
	return x / (x + b.y.rand(r))
}

// lbeta is the logarithm of the beta function B(a, b).
func lbeta(a, b float64) float64 {
	la, _ := math.Lgamma(a)
	lb, _ := math.Lgamma(b)
	lab, _ := math.Lgamma(a + b)
	return la + lb - lab
}

// regIncBeta is the regularized incomplete beta function I_x(a, b), the CDF of
// Beta(a, b) at x (Numerical Recipes, 3rd ed., section 6.4).
func regIncBeta(a, b, x float64) float64 {
	switch {
	case x <= 0:
		return 0
	case x >= 1:
		return 1
	}
	front := math.Exp(a*math.Log(x) + b*math.Log1p(-x) - lbeta(a, b))
	// The continued fraction converges fast only left of the mean; use the symmetry
	// I_x(a, b) = 1 − I_{1−x}(b, a) on the other side.
	if x < (a+1)/(a+b+2) {
		return front * betaCF(a, b, x) / a
	}
	return 1 - front*betaCF(b, a, 1-x)/b
}

// betaCF evaluates the continued fraction of the incomplete beta function by the
// modified Lentz method. It needs O(√max(a, b)) terms, hence the generous cap.
func betaCF(a, b, x float64) float64 {
	const (
		tiny    = 1e-300
		eps     = 1e-15
		maxIter = 1_000_000
	)
	guard := func(v float64) float64 {
		if math.Abs(v) < tiny {
			return tiny
		}
		return v
	}
	c, d := 1.0, 1/guard(1-(a+b)*x/(a+1))
	h := d
	for m := 1.0; m <= maxIter; m++ {
		m2 := 2 * m
		aa := m * (b - m) * x / ((a - 1 + m2) * (a + m2))
		d = 1 / guard(1+aa*d)
		c = guard(1 + aa/c)
		h *= d * c
		aa = -(a + m) * (a + b + m) * x / ((a + m2) * (a + 1 + m2))
		d = 1 / guard(1+aa*d)
		c = guard(1 + aa/c)
		del := d * c
		h *= del
		if math.Abs(del-1) < eps {
			break
		}
	}
	return h
}

// betaQuantile returns the p-quantile of Beta(a, b).
func betaQuantile(a, b, p float64) float64 {
	return bisect(func(x float64) float64 { return regIncBeta(a, b, x) }, p, 0, 1)
}

// studentTQuantile returns the p-quantile of Student's t with nu degrees of freedom,
// for p in (0.5, 1).
func studentTQuantile(nu, p float64) float64 {
	// P(T > t) = I_{ν/(ν+t²)}(ν/2, 1/2) / 2 for t > 0.
	cdf := func(t float64) float64 { return 1 - regIncBeta(nu/2, 0.5, nu/(nu+t*t))/2 }
	hi := 1.0
	for cdf(hi) < p {
		hi *= 2
	}
	return bisect(cdf, p, 0, hi)
}

// bisect returns x in [lo, hi] where the non-decreasing function cdf crosses p, to
// the precision of float64.
func bisect(cdf func(float64) float64, p, lo, hi float64) float64 {
	for range 200 {
		mid := lo + (hi-lo)/2
		if mid <= lo || mid >= hi {
			break
		}
		if cdf(mid) < p {
			lo = mid
		} else {
			hi = mid
		}
	}
	return lo + (hi-lo)/2
}
