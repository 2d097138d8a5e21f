package stats

import "math"

// DefaultSequentialTuning is the sample size at which sequential intervals are
// tightest; 5,000 users is a typical size for a first look.
const DefaultSequentialTuning = 5000

// Sequential testing uses the asymptotic confidence sequences of Waudby-Smith, Arnold,
// Wu, Howard and Ramdas ("Time-uniform central limit theory and asymptotic confidence
// sequences", 2021): intervals that hold at every sample size at once, so people may
// look at results as often as they like without inflating the false-positive rate.
// For an estimate with variance v after n users (so a per-user variance σ² ≈ v·n), the
// interval is estimate ± σ·√(2(nρ²+1)/(n²ρ²) · ln(√(nρ²+1)/α)), with ρ chosen so the
// interval is tightest at n = tuning.

func sequentialRho2(alpha, tuning float64) float64 {
	l := -2 * math.Log(alpha)
	return (l + math.Log(l+1)) / tuning
}

// ConfidenceSequence returns the always-valid interval at level 1−alpha.
func ConfidenceSequence(estimate, variance, n, alpha, tuning float64) Interval {
	rho2 := sequentialRho2(alpha, tuning)
	sigma := math.Sqrt(variance * n)
	r := sigma * math.Sqrt(2*(n*rho2+1)/(n*n*rho2)*math.Log(math.Sqrt(n*rho2+1)/alpha))
	return Interval{estimate - r, estimate + r}
}

// SequentialPValue is the smallest alpha at which the confidence sequence (with ρ
// tuned for designAlpha) excludes zero; it is valid at every look.
func SequentialPValue(estimate, variance, n, designAlpha, tuning float64) float64 {
	if variance == 0 {
		if estimate == 0 {
			return 1
		}
		return 0
	}
	rho2 := sequentialRho2(designAlpha, tuning)
	z2 := estimate * estimate / variance
	p := math.Sqrt(n*rho2+1) * math.Exp(-z2*n*rho2/(2*(n*rho2+1)))
	return math.Min(1, p)
}
