package bandit

import (
	"math"
)

// DefaultSegmentESS is the effective sample size, in exposures per arm, that a
// segment borrows from the global posterior by default.
const DefaultSegmentESS = 100

// SegmentPriors returns per-arm priors for a segment's bandit: the global posterior of
// each arm (from global and cfg) shrunk to at most ess pseudo-observations. Put them in
// cfg.Priors to compute the segment's weights. It returns a *derrors.ValidationError when
// global or cfg is invalid or ess is negative.
func SegmentPriors(global []Counts, cfg Config, ess float64) ([]Posterior, error) {
	if !(ess >= 0) || math.IsInf(ess, 0) {
		return nil, invalid("segment_ess", "must be a non-negative number, got %v", ess)
	}
	if err := validate(global, cfg); err != nil {
		return nil, err
	}
	posts := Posteriors(global, cfg)
	for i, p := range posts {
		posts[i] = p.Shrink(ess)
	}
	return posts, nil
}
