// Package stats is lift's statistics engine: frequentist and Bayesian comparisons of
// variants from per-variant aggregates (docs/statistics.md). It is pure: results
// pages, `lift analyze` and the bandit reports feed it numbers, never rows.
package stats

import (
	"math"

	"gonum.org/v1/gonum/stat/distuv"
)

// Estimate is a point estimate of a variant's metric (a rate or a mean per user)
// with the variance of that estimate.
type Estimate struct {
	Mean, Var float64
}

// Proportion estimates a conversion rate: x of n users converted. The variance is the
// binomial p(1−p)/n of the contract.
func Proportion(n, x float64) Estimate {
	p := x / n
	return Estimate{Mean: p, Var: p * (1 - p) / n}
}

// Moments are the aggregates of a per-user metric over a variant's users: count, sum
// and sum of squares, which is all ClickHouse needs to return.
type Moments struct {
	N, Sum, SumSq float64
}

// SampleVar is the unbiased sample variance of the metric. Sum·(Sum/N) rather than
// Sum²/N: Sum² overflows for sums past 1.3e154, which a mean of 1e145 over 10^10
// users reaches while the variance is finite; the overflow made the variance 0.
func (m Moments) SampleVar() float64 {
	if m.N < 2 {
		return 0
	}
	return math.Max(0, (m.SumSq-m.Sum*(m.Sum/m.N))/(m.N-1))
}

// Estimate returns the mean per user and its variance s²/n.
func (m Moments) Estimate() Estimate {
	return Estimate{Mean: m.Sum / m.N, Var: m.SampleVar() / m.N}
}

// RelativeLift is t/c − 1 with its delta-method variance
// v_t/μ_c² + μ_t²·v_c/μ_c⁴. ok is false when the control's mean is zero.
func RelativeLift(c, t Estimate) (lift, variance float64, ok bool) {
	if c.Mean == 0 {
		return 0, 0, false
	}
	c2 := c.Mean * c.Mean
	return t.Mean/c.Mean - 1, t.Var/c2 + t.Mean*t.Mean*c.Var/(c2*c2), true
}

// AbsoluteLift is t − c with variance v_t + v_c (independent samples).
func AbsoluteLift(c, t Estimate) (diff, variance float64) {
	return t.Mean - c.Mean, t.Var + c.Var
}

// Interval is a confidence or credible interval.
type Interval struct {
	Low, High float64
}

var stdNormal = distuv.UnitNormal

// ZTest returns the two-sided p-value of estimate/√variance under the standard normal
// and the confidence interval at level (such as 0.95).
func ZTest(estimate, variance, level float64) (p float64, ci Interval) {
	se := math.Sqrt(variance)
	z := stdNormal.Quantile(1 - (1-level)/2)
	ci = Interval{estimate - z*se, estimate + z*se}
	if se == 0 {
		if estimate == 0 {
			return 1, ci
		}
		return 0, ci
	}
	return 2 * stdNormal.Survival(math.Abs(estimate)/se), ci
}

// NormalQuantile is the standard normal's quantile function.
func NormalQuantile(p float64) float64 { return stdNormal.Quantile(p) }
