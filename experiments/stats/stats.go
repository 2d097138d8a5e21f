// Package stats is lift's statistics engine: frequentist and Bayesian comparisons of
// variants from per-variant aggregates (docs/statistics.md). It is pure: results
// pages, `lift analyze` and the bandit reports feed it numbers, never rows.
package stats

import (
	"math"

	"gonum.org/v1/gonum/stat/distuv"
)

// Estimate is a point estimate of a variant's metric (a rate or a mean per user)
// with the variance of that estimate and the users behind it, which the degrees of
// freedom of a comparison need. Lost is set when the stored sums could not resolve
// the variance (see Moments.Variance): the estimate's Var is then not to be trusted.
type Estimate struct {
	Mean, Var, N float64
	Lost         bool
}

// Proportion estimates a conversion rate: x of n users converted. The variance is the
// binomial p(1−p)/n of the contract.
func Proportion(n, x float64) Estimate {
	p := x / n
	return Estimate{Mean: p, Var: p * (1 - p) / n, N: n}
}

// Moments are the aggregates of a per-user metric over a variant's users: count, sum
// and sum of squares, which is all ClickHouse needs to return.
type Moments struct {
	N, Sum, SumSq float64
}

// ResolvableSpread is the smallest relative spread of values (standard deviation
// over the absolute mean) that a variance computed from sums can be trusted to show:
// below it, Σy² − (Σy)²/n cancels to less than 1e-10 of (Σy)²/n and what is left is
// rounding — in the stored sums, which have already lost those digits, not in the
// arithmetic here. Values around 1e12 that differ by a few units fall below it.
const ResolvableSpread = 1e-5

// relativeCancellation is ResolvableSpread², the fraction of mean²·n below which
// Σy² − (Σy)²/n is rounding.
const relativeCancellation = ResolvableSpread * ResolvableSpread

// Variance is the unbiased sample variance of the metric, and whether the sums
// resolve it. The difference Σy² − Σy·(Σy/n) is taken with fused multiply-adds, so
// that the arithmetic adds no rounding of its own to what the sums hold (Σy·(Σy/n)
// rather than (Σy)²/n also keeps sums past 1.3e154 from overflowing). When the
// difference is below relativeCancellation × mean²·n it is rounding noise: the
// variance is reported as 0 with resolved false, unless the difference is exactly 0
// (values that do not vary, such as whole numbers of money, cancel exactly).
// Fewer than 2 users have no variance (0, resolved).
func (m Moments) Variance() (v float64, resolved bool) {
	if m.N < 2 {
		return 0, true
	}
	mean := m.Sum / m.N
	// Σy²/n − mean·Σy exactly up to the last rounding: r is what the division left
	// over (Σy − n·mean, exact by FMA), and Σy·r/n the part of (Σy)²/n it carries.
	r := math.FMA(-m.N, mean, m.Sum)
	d := math.FMA(-m.Sum, mean, m.SumSq) - m.Sum*(r/m.N)
	scale := m.Sum * mean
	switch {
	case d == 0:
		return 0, true
	case d <= relativeCancellation*scale:
		return 0, false
	}
	return d / (m.N - 1), true
}

// SampleVar is the unbiased sample variance of the metric, 0 when the sums do not
// resolve it (see Variance).
func (m Moments) SampleVar() float64 {
	v, _ := m.Variance()
	return v
}

// Estimate returns the mean per user and its variance s²/n.
func (m Moments) Estimate() Estimate {
	v, resolved := m.Variance()
	return Estimate{Mean: m.Sum / m.N, Var: v / m.N, N: m.N, Lost: !resolved}
}

// RelativeLift is (t − c)/|c| with its delta-method variance
// v_t/μ_c² + μ_t²·v_c/μ_c⁴. Dividing by the control's absolute mean keeps the sign
// of the lift the sign of the difference when the control's mean is negative (net
// refunds: −0.5 → −0.2 is an improvement of 60%); the variance does not depend on
// the sign. ok is false when the control's mean is zero.
func RelativeLift(c, t Estimate) (lift, variance float64, ok bool) {
	if c.Mean == 0 {
		return 0, 0, false
	}
	c2 := c.Mean * c.Mean
	return (t.Mean - c.Mean) / math.Abs(c.Mean), t.Var/c2 + t.Mean*t.Mean*c.Var/(c2*c2), true
}

// AbsoluteLift is t − c with variance v_t + v_c (independent samples).
func AbsoluteLift(c, t Estimate) (diff, variance float64) {
	return t.Mean - c.Mean, t.Var + c.Var
}

// WelchDF is the Welch–Satterthwaite degrees of freedom of a comparison of two
// estimates: (v_c + v_t)² / (v_c²/(n_c − 1) + v_t²/(n_t − 1)), with v the variance
// of each estimate (of the mean, not of the relative lift: as gbstats computes it).
// Both estimates need at least 2 users and a positive variance between them.
func WelchDF(c, t Estimate) float64 {
	den := c.Var*c.Var/(c.N-1) + t.Var*t.Var/(t.N-1)
	return (c.Var + t.Var) * (c.Var + t.Var) / den
}

// Interval is a confidence or credible interval.
type Interval struct {
	Low, High float64
}

var stdNormal = distuv.UnitNormal

// normalDF is the number of degrees of freedom past which Student's t is taken as
// the normal: their quantiles differ by less than 1e-9 relative there, and the
// incomplete Beta functions behind t need more and more terms.
const normalDF = 1e9

// TTest returns the two-sided p-value of estimate/√variance under Student's t with
// df degrees of freedom, and the confidence interval at level (such as 0.95). The
// p-value comes from the survival function, so it goes down to the smallest numbers
// float64 holds instead of stopping at 1 − CDF's 1e-16. The variance must be
// positive.
func TTest(estimate, variance, df, level float64) (p float64, ci Interval) {
	if !(df < normalDF) {
		return ZTest(estimate, variance, level)
	}
	t := distuv.StudentsT{Mu: 0, Sigma: 1, Nu: df}
	se := math.Sqrt(variance)
	q := tQuantile((1-level)/2, df)
	return math.Min(1, 2*t.Survival(math.Abs(estimate)/se)), Interval{estimate - q*se, estimate + q*se}
}

// expansionDF is the number of degrees of freedom from which tQuantile uses the
// Cornish–Fisher expansion: its first omitted term is below 1e-14 there.
const expansionDF = 1000

// tQuantile is the upper quantile t_{df, 1−tail} of Student's t. Past expansionDF it
// is the Cornish–Fisher expansion around the normal quantile z (Abramowitz and
// Stegun 26.7.5, four terms), which agrees with SciPy's t.isf to 1e-12 (gonum's
// inverse incomplete Beta function is off by 2e-10 at millions of degrees of
// freedom) at a sixth of the cost of the whole analysis: the results page compares up
// to a hundred variants × metrics, nearly all with thousands of users.
func tQuantile(tail, df float64) float64 {
	if df < expansionDF {
		// The lower tail's quantile, negated: where Quantile is precise.
		return -distuv.StudentsT{Mu: 0, Sigma: 1, Nu: df}.Quantile(tail)
	}
	z := -stdNormal.Quantile(tail)
	z2 := z * z
	g1 := z * (z2 + 1) / 4
	g2 := z * ((5*z2+16)*z2 + 3) / 96
	g3 := z * (((3*z2+19)*z2+17)*z2 - 15) / 384
	g4 := z * ((((79*z2+776)*z2+1482)*z2-1920)*z2 - 945) / 92160
	return z + (g1+(g2+(g3+g4/df)/df)/df)/df
}

// ZTest returns the two-sided p-value of estimate/√variance under the standard normal
// and the confidence interval at level (such as 0.95). The variance must be positive.
func ZTest(estimate, variance, level float64) (p float64, ci Interval) {
	se := math.Sqrt(variance)
	z := -stdNormal.Quantile((1 - level) / 2)
	return math.Min(1, 2*stdNormal.Survival(math.Abs(estimate)/se)), Interval{estimate - z*se, estimate + z*se}
}

// NormalQuantile is the standard normal's quantile function.
func NormalQuantile(p float64) float64 { return stdNormal.Quantile(p) }
