package bandit

import (
	"math"
	"math/rand/v2"
)

// Goal is what an arm is judged by.
type Goal int

const (
	// Conversion goals count users who converted: Beta–Bernoulli posteriors.
	Conversion Goal = iota
	// Value goals average a value per exposed user (revenue, with 0 for users who
	// bought nothing): Normal posteriors with unknown variance.
	Value
)

// Counts are one arm's data. Exposures is the number of exposed users; Conversions
// those who converted (conversion goals); Sum and SumSq the sum of the users' values
// and of their squares (value goals). They are floats because discounting weighs
// older data down.
type Counts struct {
	Exposures   float64 `json:"exposures"`
	Conversions float64 `json:"conversions,omitempty"`
	Sum         float64 `json:"sum,omitempty"`
	SumSq       float64 `json:"sum_sq,omitempty"`
}

// Posterior is the belief about one arm's mean (conversion rate or mean value). Beta
// and NormalInvGamma implement it.
type Posterior interface {
	// Mean is the posterior mean.
	Mean() float64
	// Interval is the equal-tailed credible interval holding level of the mass.
	Interval(level float64) (lo, hi float64)
	// Sample draws a value of the arm's mean.
	Sample(r *rand.Rand) float64
	// Update returns the posterior after observing c.
	Update(c Counts) Posterior
	// Shrink returns the same belief worth at most ess observations: same mean,
	// wider. Segment priors use it to borrow strength from the global posterior.
	Shrink(ess float64) Posterior
	// sampler prepares for many draws, as Monte Carlo makes.
	sampler() sampler
}

// A sampler draws from a posterior with the constants worked out beforehand.
type sampler interface{ draw(r *rand.Rand) float64 }

// Beta is the Beta(A, B) posterior of a conversion rate; Beta{1, 1} is the uniform
// prior.
type Beta struct{ A, B float64 }

// Mean is A/(A+B).
func (b Beta) Mean() float64 { return b.A / (b.A + b.B) }

// Interval is the exact equal-tailed interval.
func (b Beta) Interval(level float64) (lo, hi float64) {
	tail := (1 - level) / 2
	return betaQuantile(b.A, b.B, tail), betaQuantile(b.A, b.B, 1-tail)
}

// Sample draws a conversion rate.
func (b Beta) Sample(r *rand.Rand) float64 { return b.dist().draw(r) }

func (b Beta) sampler() sampler { return b.dist() }

func (b Beta) dist() betaDist { return betaDist{newGammaDist(b.A), newGammaDist(b.B)} }

// Update adds the conversions to A and the other exposures to B.
func (b Beta) Update(c Counts) Posterior {
	return Beta{b.A + c.Conversions, b.B + c.Exposures - c.Conversions}
}

// Shrink scales A and B down so that A+B ≤ ess, keeping the mean.
func (b Beta) Shrink(ess float64) Posterior {
	if n := b.A + b.B; n > ess {
		return Beta{b.A * ess / n, b.B * ess / n}
	}
	return b
}

// NormalInvGamma is the conjugate posterior of a Normal mean μ with unknown variance
// σ²: σ² ~ InvGamma(A, B) and μ | σ² ~ Normal(Mu, σ²/Kappa). Marginally μ follows
// Student's t with 2A degrees of freedom, location Mu and scale √(B/(A·Kappa)), which
// stays honest for small samples and heavy-tailed revenue where a known-variance
// model would be overconfident.
type NormalInvGamma struct{ Mu, Kappa, A, B float64 }

// Mean is Mu.
func (n NormalInvGamma) Mean() float64 { return n.Mu }

// Interval is the Student-t interval around Mu.
func (n NormalInvGamma) Interval(level float64) (lo, hi float64) {
	half := studentTQuantile(2*n.A, 1-(1-level)/2) * math.Sqrt(n.B/(n.A*n.Kappa))
	return n.Mu - half, n.Mu + half
}

// Sample draws μ: σ² = B/G with G ~ Gamma(A), then μ ~ Normal(Mu, σ²/Kappa).
func (n NormalInvGamma) Sample(r *rand.Rand) float64 { return n.dist().draw(r) }

func (n NormalInvGamma) sampler() sampler { return n.dist() }

func (n NormalInvGamma) dist() nigDist {
	return nigDist{mu: n.Mu, bOverKappa: n.B / n.Kappa, g: newGammaDist(n.A)}
}

type nigDist struct {
	mu, bOverKappa float64
	g              gammaDist
}

func (n nigDist) draw(r *rand.Rand) float64 {
	return n.mu + r.NormFloat64()*math.Sqrt(n.bOverKappa/n.g.rand(r))
}

// Update is the conjugate update with the sample mean and sum of squared deviations.
func (n NormalInvGamma) Update(c Counts) Posterior {
	if c.Exposures <= 0 {
		return n
	}
	mean := c.Sum / c.Exposures
	// Rounding can make the difference slightly negative when all values are equal.
	ss := math.Max(c.SumSq-c.Sum*mean, 0)
	kappa := n.Kappa + c.Exposures
	return NormalInvGamma{
		Mu:    (n.Kappa*n.Mu + c.Sum) / kappa,
		Kappa: kappa,
		A:     n.A + c.Exposures/2,
		B:     n.B + ss/2 + n.Kappa*c.Exposures*(mean-n.Mu)*(mean-n.Mu)/(2*kappa),
	}
}

// Shrink caps Kappa at ess and A at ess/2, scaling B with A so that the variance
// estimate B/A is kept.
func (n NormalInvGamma) Shrink(ess float64) Posterior {
	a := math.Min(n.A, ess/2)
	return NormalInvGamma{Mu: n.Mu, Kappa: math.Min(n.Kappa, ess), A: a, B: n.B * a / n.A}
}

// valuePrior is the default prior for value goals: one pseudo-observation at the
// pooled mean with the pooled variance. Centring on the pooled data makes it
// scale-free (cents or euros) without favouring any arm.
func valuePrior(arms []Counts) NormalInvGamma {
	var n, sum, sumSq float64
	for _, c := range arms {
		n, sum, sumSq = n+c.Exposures, sum+c.Sum, sumSq+c.SumSq
	}
	mean, variance := 0.0, 0.0
	if n > 0 {
		mean = sum / n
		variance = math.Max(sumSq/n-mean*mean, 0)
	}
	if variance == 0 {
		// Without spread in the data there is no scale to go by; any positive one keeps
		// the posteriors proper and, being the same for every arm, favours none.
		variance = 1
	}
	return NormalInvGamma{Mu: mean, Kappa: 1, A: 0.5, B: variance / 2}
}
