package stats

import "gonum.org/v1/gonum/stat/distuv"

// SRMThreshold is the p-value below which a sample-ratio mismatch is flagged.
const SRMThreshold = 0.001

// SRM tests observed user counts against the configured weights with Pearson's
// chi-square test (k−1 degrees of freedom) and returns its p-value. Weights are
// normalised to sum to 1; variants with weight 0 are left out (no user should be
// there, and a zero expectation has no chi-square term).
func SRM(counts, weights []float64) float64 {
	total, wsum := 0.0, 0.0
	for i, c := range counts {
		if weights[i] > 0 {
			total += c
			wsum += weights[i]
		}
	}
	chi2, k := 0.0, 0
	for i, c := range counts {
		if weights[i] <= 0 {
			continue
		}
		e := total * weights[i] / wsum
		if e > 0 {
			chi2 += (c - e) * (c - e) / e
			k++
		}
	}
	if k < 2 {
		return 1
	}
	return distuv.ChiSquared{K: float64(k - 1)}.Survival(chi2)
}
