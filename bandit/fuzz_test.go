package bandit_test

import (
	"errors"
	"math"
	"testing"

	"github.com/liftlab/lift/bandit"
	"github.com/liftlab/lift/internal/derrors"
)

// FuzzWeights checks that any counts Weights accepts give weights that form a
// probability distribution, and that it rejects the rest with a ValidationError
// rather than returning NaNs.
func FuzzWeights(f *testing.F) {
	f.Add(100.0, 10.0, 100.0, 12.0, 200.0, 30.0, 0.01, false, false)
	f.Add(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, true, false)
	f.Add(1e7, 5e5, 1e7, 5.1e5, 1e3, 0.0, 0.3, false, true)
	f.Fuzz(func(t *testing.T, e0, v0, e1, v1, e2, v2, minWeight float64, value, twoArms bool) {
		cfg := bandit.DefaultConfig()
		cfg.Draws, cfg.MinWeight = 500, minWeight
		arms := []bandit.Counts{{Exposures: e0}, {Exposures: e1}, {Exposures: e2}}
		for i, v := range []float64{v0, v1, v2} {
			if value {
				arms[i].Sum, arms[i].SumSq = v, v*v
			} else {
				arms[i].Conversions = v
			}
		}
		if value {
			cfg.Goal = bandit.Value
		}
		if twoArms { // the closed form's path
			arms = arms[:2]
		}
		res, err := bandit.Weights(arms, cfg)
		if err != nil {
			if !errors.As(err, new(*derrors.ValidationError)) {
				t.Fatalf("error %v is not a ValidationError", err)
			}
			return
		}
		total := 0.0
		for i, w := range res.Weights {
			if math.IsNaN(w) || w < 0 || math.IsNaN(res.PBest[i]) {
				t.Fatalf("weights %v, P(best) %v", res.Weights, res.PBest)
			}
			total += w
		}
		if math.Abs(total-1) > 1e-9 {
			t.Fatalf("weights %v sum to %v", res.Weights, total)
		}
	})
}
