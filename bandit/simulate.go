package bandit

import (
	"context"
	"math"
	"runtime"
	"slices"
	"sync"
)

// Policies the simulator knows.
const (
	PolicyTS      = "ts"      // Thompson sampling: one draw per arm and round
	PolicyUCB1    = "ucb1"    // Auer, Cesa-Bianchi and Fischer's UCB1
	PolicyEGreedy = "egreedy" // ε-greedy with ε = Epsilon
	PolicyUniform = "uniform" // a fixed equal split, what an A/B/n test pays
	PolicyLift    = "lift"    // what lift serves: users hashed into published Weights
)

// Epsilon is the exploration rate of the ε-greedy policy.
const Epsilon = 0.1

// Router is how lift assigns users under published weights; the simulator's lift
// policy calls it at every publication and routes each user with the function it
// returns. cmd/lift passes the decision path's hashing (experiments.Hash into
// experiments.BucketRanges), which this package may not import.
type Router func(weights []float64) func(userID string) int

// SimConfig describes a simulation. The arms are Bernoulli with the given means.
type SimConfig struct {
	Arms   []float64
	Rounds int
	Seeds  int
	Policy string
	// Batch is the number of rounds between updates of what the policy knows.
	Batch int
	// Router is required by the lift policy, which computes weights with
	// DefaultConfig.
	Router Router
}

// SimResult is the outcome of a simulation: cumulative expected regret
// Σ (μ* − μ_chosen) after Rounds rounds, averaged over the seeds, with its standard
// error (0 for a single seed), and the Lai–Robbins lower bound at that horizon for
// comparison.
type SimResult struct {
	Policy     string    `json:"policy"`
	Arms       []float64 `json:"arms"`
	Rounds     int       `json:"rounds"`
	Seeds      int       `json:"seeds"`
	Batch      int       `json:"batch"`
	MeanRegret float64   `json:"mean_regret"`
	StdErr     float64   `json:"stderr"`
	LaiRobbins float64   `json:"lai_robbins"`
}

// Simulate runs cfg.Seeds independent simulations, seeded 1…Seeds, spread over
// GOMAXPROCS goroutines. It returns a *derrors.ValidationError naming the field for an
// invalid configuration, and ctx's error if ctx ends first.
func Simulate(ctx context.Context, cfg SimConfig) (SimResult, error) {
	if err := cfg.validate(); err != nil {
		return SimResult{}, err
	}
	regrets := make([]float64, cfg.Seeds)
	errs := make([]error, cfg.Seeds)
	seeds := make(chan int)
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), cfg.Seeds) {
		wg.Go(func() {
			for s := range seeds {
				regrets[s], errs[s] = simulateOne(ctx, cfg, uint64(s)+1)
			}
		})
	}
	for s := range cfg.Seeds {
		seeds <- s
	}
	close(seeds)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return SimResult{}, err
		}
	}
	mean, stderr := meanStdErr(regrets)
	return SimResult{
		Policy: cfg.Policy, Arms: cfg.Arms, Rounds: cfg.Rounds, Seeds: cfg.Seeds, Batch: cfg.Batch,
		MeanRegret: mean, StdErr: stderr, LaiRobbins: LaiRobbins(cfg.Arms, cfg.Rounds),
	}, nil
}

// simulateOne returns the regret of one run.
func simulateOne(ctx context.Context, cfg SimConfig, seed uint64) (float64, error) {
	r := newRand(seed)
	k := len(cfg.Arms)
	// The policy sees seen; results gather in fresh until the batch ends.
	seen := &tally{pulls: make([]float64, k), wins: make([]float64, k)}
	fresh := tally{pulls: make([]float64, k), wins: make([]float64, k)}
	p := newPolicy(cfg, seen)
	best := slices.Max(cfg.Arms)
	regret := 0.0
	for t := range cfg.Rounds {
		if t%(1<<16) == 0 && ctx.Err() != nil {
			return 0, ctx.Err()
		}
		if t%cfg.Batch == 0 {
			seen.add(&fresh)
			if err := p.learn(r); err != nil {
				return 0, err
			}
		}
		arm := p.choose(r)
		regret += best - cfg.Arms[arm]
		fresh.pulls[arm]++
		if r.Float64() < cfg.Arms[arm] {
			fresh.wins[arm]++
		}
	}
	return regret, nil
}

// LaiRobbins is Lai and Robbins' asymptotic lower bound on the expected regret of any
// consistent policy on Bernoulli arms: Σ_i Δ_i / KL(μ_i, μ*) · ln T over the
// suboptimal arms.
func LaiRobbins(arms []float64, rounds int) float64 {
	best := slices.Max(arms)
	sum := 0.0
	for _, mu := range arms {
		if mu < best {
			sum += (best - mu) / klBernoulli(mu, best)
		}
	}
	return sum * math.Log(float64(rounds))
}

// klBernoulli is the Kullback–Leibler divergence KL(Bernoulli(p) ‖ Bernoulli(q)).
func klBernoulli(p, q float64) float64 {
	term := func(a, b float64) float64 {
		if a == 0 {
			return 0
		}
		return a * math.Log(a/b)
	}
	return term(p, q) + term(1-p, 1-q)
}

func meanStdErr(xs []float64) (mean, stderr float64) {
	for _, x := range xs {
		mean += x
	}
	n := float64(len(xs))
	mean /= n
	if len(xs) < 2 {
		return mean, 0 // undefined, but JSON has no NaN
	}
	ss := 0.0
	for _, x := range xs {
		ss += (x - mean) * (x - mean)
	}
	return mean, math.Sqrt(ss / (n - 1) / n)
}

func (cfg SimConfig) validate() error {
	switch {
	case len(cfg.Arms) < 2:
		return invalid("arms", "need at least 2 arms, got %d", len(cfg.Arms))
	case cfg.Rounds < 1:
		return invalid("rounds", "must be positive, got %d", cfg.Rounds)
	case cfg.Seeds < 1:
		return invalid("seeds", "must be positive, got %d", cfg.Seeds)
	case cfg.Batch < 1:
		return invalid("batch", "must be positive, got %d", cfg.Batch)
	case cfg.Policy == PolicyLift && cfg.Router == nil:
		return invalid("policy", "the lift policy needs a Router")
	}
	for i, mu := range cfg.Arms {
		if !(mu >= 0 && mu <= 1) {
			return invalid("arms", "arm %d: mean %v is not a probability", i, mu)
		}
	}
	switch cfg.Policy {
	case PolicyTS, PolicyUCB1, PolicyEGreedy, PolicyUniform, PolicyLift:
		return nil
	}
	return invalid("policy", "unknown policy %q (want ts, ucb1, egreedy, uniform or lift)", cfg.Policy)
}
