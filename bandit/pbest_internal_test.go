package bandit

import (
	"math"
	"testing"
)

// TestMonteCarloMatchesExact compares Monte Carlo P(best) with 10,000 draws against
// the closed form for two Beta arms. The Monte Carlo standard error is at most
// 0.5/√10,000 = 0.005; the tolerance is 4 of them.
func TestMonteCarloMatchesExact(t *testing.T) {
	pairs := [][2]Beta{
		{{1, 1}, {1, 1}},
		{{13, 89}, {10, 92}},
		{{41, 961}, {51, 951}},
		{{401, 9601}, {431, 9571}},
		{{2.5, 7.25}, {3, 6}}, // only one integer parameter
	}
	for seed := uint64(1); seed <= 3; seed++ {
		for _, pair := range pairs {
			exact, ok := ProbGreater(pair[0], pair[1])
			if !ok {
				t.Fatalf("%v: no closed form", pair)
			}
			mc := monteCarlo([]Posterior{pair[0], pair[1]}, 10_000, seed)
			if math.Abs(mc[0]-exact) > 0.02 || math.Abs(mc[0]+mc[1]-1) > 1e-12 {
				t.Errorf("seed %d, %v: Monte Carlo %v, exact %v", seed, pair, mc, exact)
			}
		}
	}
}
