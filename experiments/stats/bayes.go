package stats

import (
	"math"

	"gonum.org/v1/gonum/integrate/quad"
	"gonum.org/v1/gonum/mathext"
	"gonum.org/v1/gonum/stat/distuv"
)

// ChanceToBeatBeta is P(B_t > B_c) for B ~ Beta(1+x, 1+n−x), the uniform-prior
// posterior of each conversion rate. It integrates f_c(u)·(1 − F_t(u)) numerically
// (Gauss–Legendre) over the range that holds the control's posterior mass, which
// agrees with the closed-form sum to 1e-6 — far inside the contract's ±0.002 — at any
// sample size, where the closed-form sum needs as many terms as there are conversions.
//
// Counts past what float64 and gonum's Beta functions resolve (some 10^16 users or
// more, which `lift analyze` may be given) give NaN, which the comparison reports as
// out of range, instead of looping without end or panicking.
func ChanceToBeatBeta(nc, xc, nt, xt float64) float64 {
	// 1 + (n − x): 1 + n − x loses the 1 past 2^53 users and makes a parameter 0.
	ac, bc := 1+xc, 1+(nc-xc)
	at, bt := 1+xt, 1+(nt-xt)
	c := distuv.Beta{Alpha: ac, Beta: bc}
	mean := ac / (ac + bc)
	sd := math.Sqrt(ac * bc / ((ac + bc) * (ac + bc) * (ac + bc + 1)))
	// A posterior narrower than float64 resolves around its mean has no integral to
	// take: stepping out below would never move.
	if !(sd > 0) || mean-sd == mean || mean+sd == mean || !(at > 0 && bt > 0) {
		return math.NaN()
	}
	lo, hi := math.Max(0, mean-8*sd), math.Min(1, mean+8*sd)
	// Eight standard deviations hold all the mass of a symmetric posterior, not of a
	// skewed one (few conversions, or nearly everyone converting): step out until
	// the tails left out are negligible. A few dozen steps reach any tail the Beta
	// functions compute; more means they no longer do.
	const tail, maxSteps = 1e-12, 64
	for k := 0; lo > 0 && c.CDF(lo) > tail; k++ {
		if k == maxSteps {
			return math.NaN()
		}
		lo = math.Max(0, lo-2*sd)
	}
	for k := 0; hi < 1 && c.Survival(hi) > tail; k++ {
		if k == maxSteps {
			return math.NaN()
		}
		hi = math.Min(1, hi+2*sd)
	}
	integrand := func(u float64) float64 {
		return math.Exp(c.LogProb(u)) * (1 - mathext.RegIncBeta(at, bt, u))
	}
	// One 20-point Gauss–Legendre piece per four standard deviations resolves the
	// peak of the density wherever it sits.
	pieces := int(math.Ceil((hi - lo) / (4 * sd)))
	sum, step := 0.0, (hi-lo)/float64(pieces)
	for i := range pieces {
		sum += quad.Fixed(integrand, lo+float64(i)*step, lo+float64(i+1)*step, 20, quad.Legendre{}, 0)
	}
	return math.Min(1, math.Max(0, sum))
}

// ChanceToBeatNormal is P(μ_t > μ_c) when both posteriors are approximately normal
// with the given estimates, as for means of revenue per user.
func ChanceToBeatNormal(c, t Estimate) float64 {
	sd := math.Sqrt(c.Var + t.Var)
	if sd == 0 {
		switch {
		case t.Mean > c.Mean:
			return 1
		case t.Mean < c.Mean:
			return 0
		}
		return 0.5
	}
	return stdNormal.CDF((t.Mean - c.Mean) / sd)
}

// ExpectedLoss is E[max(μ_c − μ_t, 0)]: how much one expects to lose, in the metric's
// units, by shipping the treatment if it is in fact worse. The difference of the
// posteriors is taken as normal, which the Beta posteriors are close to at the sample
// sizes where shipping decisions are made.
func ExpectedLoss(c, t Estimate) float64 {
	m := t.Mean - c.Mean
	s := math.Sqrt(c.Var + t.Var)
	if s == 0 {
		return math.Max(0, -m)
	}
	return s*stdNormal.Prob(m/s) - m*stdNormal.CDF(-m/s)
}
