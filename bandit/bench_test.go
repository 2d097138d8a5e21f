package bandit_test

import (
	"testing"

	"github.com/liftlab/lift/bandit"
)

// tenArms is an experiment with 10,000,000 exposures over 10 arms, the target
// for the updater.
func tenArms() []bandit.Counts {
	arms := make([]bandit.Counts, 10)
	for i := range arms {
		arms[i] = bandit.Counts{Exposures: 1_000_000, Conversions: 40_000 + float64(i)*300}
	}
	return arms
}

func BenchmarkWeights10Arms(b *testing.B) {
	arms, cfg := tenArms(), bandit.DefaultConfig()
	for b.Loop() {
		if _, err := bandit.Weights(arms, cfg); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkWeights10ArmsValue(b *testing.B) {
	arms, cfg := tenArms(), bandit.DefaultConfig()
	cfg.Goal = bandit.Value
	for i := range arms {
		arms[i].Sum = arms[i].Conversions * 30
		arms[i].SumSq = arms[i].Conversions * 1500
	}
	for b.Loop() {
		if _, err := bandit.Weights(arms, cfg); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkProbBest10Arms(b *testing.B) {
	posts := bandit.Posteriors(tenArms(), bandit.DefaultConfig())
	for b.Loop() {
		bandit.ProbBest(posts, 10_000, 1)
	}
}

func BenchmarkProbGreaterExact(b *testing.B) {
	x, y := bandit.Beta{A: 40_001, B: 960_001}, bandit.Beta{A: 40_301, B: 959_701}
	for b.Loop() {
		bandit.ProbGreater(x, y)
	}
}

func BenchmarkSimulateTS(b *testing.B) {
	cfg := bandit.SimConfig{Arms: chapelleLi, Rounds: 10_000, Seeds: 1, Batch: 1, Policy: bandit.PolicyTS}
	for b.Loop() {
		if _, err := bandit.Simulate(b.Context(), cfg); err != nil {
			b.Fatal(err)
		}
	}
}
