package bandit

import (
	"math"
)

// Discounted combines per-period counts, oldest period first and one Counts per arm in
// each, into the counts Weights should see when the arms' appeal may drift: only the
// last window periods count (0 means all), and a period k periods older than the
// newest is weighted by decay^k (1 means no decay). Exposures, conversions, sums and
// sums of squares are all weighted alike, so the posterior is that of the weighted
// data, as narrow as the weighted number of exposures warrants. It returns a
// *derrors.ValidationError when the periods have different numbers of arms, window is
// negative or decay is not in (0, 1].
func Discounted(periods [][]Counts, window int, decay float64) ([]Counts, error) {
	if window < 0 {
		return nil, invalid("window", "must be non-negative, got %d", window)
	}
	if !(decay > 0 && decay <= 1) {
		return nil, invalid("decay", "must be in (0, 1], got %v", decay)
	}
	if window > 0 && len(periods) > window {
		periods = periods[len(periods)-window:]
	}
	if len(periods) == 0 {
		return nil, nil
	}
	out := make([]Counts, len(periods[0]))
	for k, period := range periods {
		if len(period) != len(out) {
			return nil, invalid("periods", "period %d has %d arms, want %d", k, len(period), len(out))
		}
		w := math.Pow(decay, float64(len(periods)-1-k))
		for i, c := range period {
			out[i].Exposures += w * c.Exposures
			out[i].Conversions += w * c.Conversions
			out[i].Sum += w * c.Sum
			out[i].SumSq += w * c.SumSq
		}
	}
	return out, nil
}
