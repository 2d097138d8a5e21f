package bandit_test

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/liftlab/lift/bandit"
	"github.com/liftlab/lift/internal/derrors"
)

// chapelleLi is the benchmark of Chapelle and Li ("An empirical evaluation of Thompson
// sampling", 2011): 10 arms, the best 0.5, the others 0.4.
var chapelleLi = []float64{0.5, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4}

func newTestRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 1)) }

func TestLaiRobbins(t *testing.T) {
	// 9 · 0.1/KL(0.4, 0.5) · ln 10^6, KL = 0.4 ln 0.8 + 0.6 ln 1.2.
	if got := bandit.LaiRobbins(chapelleLi, 1_000_000); math.Abs(got-617.51) > 0.01 {
		t.Errorf("Lai–Robbins bound %v, want ≈ 617.51", got)
	}
}

// TestSimulateChapelleLi is a reduced Chapelle–Li benchmark (simRounds rounds, 8
// seeds; docs/benchmarks-bandit.md has the full one): Thompson sampling must beat
// UCB1, which must beat a uniform split, and stay below 0.65 × the Lai–Robbins bound
// at that horizon, as the issue asks at 10^6 rounds. It measures about 0.5 of the
// bound at 10^5 rounds and 0.45 at 2·10^4, with a standard error of about 0.02.
func TestSimulateChapelleLi(t *testing.T) {
	if testing.Short() {
		t.Skip("simulation")
	}
	regret := map[string]bandit.SimResult{}
	for _, p := range []string{bandit.PolicyTS, bandit.PolicyUCB1, bandit.PolicyUniform} {
		res, err := bandit.Simulate(t.Context(), bandit.SimConfig{Arms: chapelleLi, Rounds: simRounds, Seeds: 8, Batch: 1, Policy: p})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: regret %.1f ± %.1f, Lai–Robbins %.1f", p, res.MeanRegret, res.StdErr, res.LaiRobbins)
		regret[p] = res
	}
	ts, ucb, uni := regret[bandit.PolicyTS], regret[bandit.PolicyUCB1], regret[bandit.PolicyUniform]
	if !(ts.MeanRegret < ucb.MeanRegret && ucb.MeanRegret < uni.MeanRegret) {
		t.Errorf("want TS < UCB1 < uniform, got %.1f, %.1f, %.1f", ts.MeanRegret, ucb.MeanRegret, uni.MeanRegret)
	}
	if limit := 0.65 * ts.LaiRobbins; ts.MeanRegret > limit {
		t.Errorf("TS regret %.1f above 0.65 × Lai–Robbins = %.1f", ts.MeanRegret, limit)
	}
}

func TestSimulateDeterministic(t *testing.T) {
	cfg := bandit.SimConfig{Arms: []float64{0.3, 0.2}, Rounds: 2000, Seeds: 3, Batch: 10, Policy: bandit.PolicyTS}
	a, err := bandit.Simulate(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := bandit.Simulate(t.Context(), cfg); a.MeanRegret != b.MeanRegret || a.StdErr != b.StdErr {
		t.Errorf("same seeds, different results: %+v and %+v", a, b)
	}
}

func TestSimulateCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	cfg := bandit.SimConfig{Arms: chapelleLi, Rounds: 1_000_000, Seeds: 2, Batch: 1000, Policy: bandit.PolicyTS}
	if _, err := bandit.Simulate(ctx, cfg); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

func TestSimulateValidation(t *testing.T) {
	good := bandit.SimConfig{Arms: []float64{0.5, 0.4}, Rounds: 10, Seeds: 1, Batch: 1, Policy: bandit.PolicyTS}
	tests := []struct {
		field  string
		modify func(*bandit.SimConfig)
	}{
		{"arms", func(c *bandit.SimConfig) { c.Arms = c.Arms[:1] }},
		{"arms", func(c *bandit.SimConfig) { c.Arms = []float64{0.5, 1.5} }},
		{"rounds", func(c *bandit.SimConfig) { c.Rounds = 0 }},
		{"seeds", func(c *bandit.SimConfig) { c.Seeds = -1 }},
		{"batch", func(c *bandit.SimConfig) { c.Batch = 0 }},
		{"policy", func(c *bandit.SimConfig) { c.Policy = "greedy" }},
		{"policy", func(c *bandit.SimConfig) { c.Policy = bandit.PolicyLift }}, // no Router
	}
	for _, tt := range tests {
		cfg := good
		tt.modify(&cfg)
		_, err := bandit.Simulate(t.Context(), cfg)
		var ve *derrors.ValidationError
		if !errors.As(err, &ve) || ve.Fields[0].Field != tt.field {
			t.Errorf("%s: err = %v, want a ValidationError for it", tt.field, err)
		}
	}
}
