package bandit_test

import (
	"errors"
	"math"
	"testing"

	"github.com/liftlab/lift/bandit"
	"github.com/liftlab/lift/internal/derrors"
)

func sum(xs []float64) float64 {
	s := 0.0
	for _, x := range xs {
		s += x
	}
	return s
}

func TestWeightsBurnIn(t *testing.T) {
	cfg := bandit.DefaultConfig()
	arms := []bandit.Counts{{Exposures: 5000, Conversions: 900}, {Exposures: 99, Conversions: 1}, {Exposures: 5000, Conversions: 400}}
	res, err := bandit.Weights(arms, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !res.BurnIn {
		t.Error("BurnIn false with an arm at 99 exposures")
	}
	for i, w := range res.Weights {
		if w != 1.0/3 {
			t.Errorf("weight %d = %v during burn-in, want 1/3", i, w)
		}
	}
	// P(best) is reported during burn-in all the same.
	if res.PBest[0] < 0.99 {
		t.Errorf("P(best) %v: want arm 0 nearly surely best", res.PBest)
	}

	arms[1].Exposures = 100
	if res, err = bandit.Weights(arms, cfg); err != nil || res.BurnIn {
		t.Fatalf("burn-in not over at 100 exposures each: %+v, %v", res, err)
	}

	cfg.BurnIn = 10_000
	if res, _ = bandit.Weights(arms, cfg); !res.BurnIn {
		t.Error("BurnIn false below a configured burn-in of 10,000")
	}
}

func TestWeightsFloor(t *testing.T) {
	// Arm 0 is best beyond doubt, so without a floor the others would get nothing.
	arms := []bandit.Counts{{Exposures: 300, Conversions: 150}, {Exposures: 300, Conversions: 30}, {Exposures: 300, Conversions: 30}}
	tests := []struct {
		name                  string
		minWeight, floorScale float64
		floor                 float64
	}{
		{"min weight binds", 0.01, 10, 0.01},  // 10/900 > 0.01
		{"floor decayed", 0.01, 1, 1.0 / 900}, // FloorScale/N
		{"no floor", 0, 10, 0},
		{"large floor", 0.3, 1000, 0.3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := bandit.DefaultConfig()
			cfg.MinWeight, cfg.FloorScale = tt.minWeight, tt.floorScale
			res, err := bandit.Weights(arms, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(sum(res.Weights)-1) > 1e-12 {
				t.Errorf("weights %v sum to %v", res.Weights, sum(res.Weights))
			}
			for i, w := range res.Weights {
				want := tt.floor + (1-3*tt.floor)*res.PBest[i]
				if math.Abs(w-want) > 1e-12 || w < tt.floor-1e-15 {
					t.Errorf("weight %d = %v, want %v (floor %v)", i, w, want, tt.floor)
				}
			}
		})
	}
}

func TestWeightsSummaries(t *testing.T) {
	arms := []bandit.Counts{{Exposures: 100, Conversions: 12}, {Exposures: 100, Conversions: 9}}
	res, err := bandit.Weights(arms, bandit.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	s := res.Posteriors[0]
	if math.Abs(s.Mean-13.0/102) > 1e-12 || !(s.Low < s.Mean && s.Mean < s.High) {
		t.Errorf("summary %+v: want mean 13/102 inside the interval", s)
	}
	// Two Beta arms take the closed form, so P(best) is exact.
	exact, _ := bandit.ProbGreater(bandit.Beta{A: 13, B: 89}, bandit.Beta{A: 10, B: 92})
	if res.PBest[0] != exact {
		t.Errorf("P(best) %v, want exact %v", res.PBest[0], exact)
	}
}

func TestWeightsValueGoal(t *testing.T) {
	cfg := bandit.DefaultConfig()
	cfg.Goal = bandit.Value
	// Mean values 2.0, 2.2 and 1.5 per user with a standard deviation of 5.
	arms := make([]bandit.Counts, 3)
	for i, mean := range []float64{2.0, 2.2, 1.5} {
		n := 5000.0
		arms[i] = bandit.Counts{Exposures: n, Sum: n * mean, SumSq: n * (25 + mean*mean)}
	}
	res, err := bandit.Weights(arms, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !(res.PBest[1] > res.PBest[0] && res.PBest[0] > res.PBest[2]) {
		t.Errorf("P(best) %v: want the order of the means", res.PBest)
	}
	if s := res.Posteriors[1]; math.Abs(s.Mean-2.2) > 1e-3 || math.Abs((s.High-s.Low)/2-1.96*5/math.Sqrt(5000)) > 1e-3 {
		t.Errorf("summary %+v: want 2.2 ± %v", s, 1.96*5/math.Sqrt(5000))
	}
}

func TestWeightsDeterministic(t *testing.T) {
	arms := []bandit.Counts{{Exposures: 1000, Conversions: 100}, {Exposures: 1000, Conversions: 110}, {Exposures: 1000, Conversions: 105}}
	a, _ := bandit.Weights(arms, bandit.DefaultConfig())
	b, _ := bandit.Weights(arms, bandit.DefaultConfig())
	for i := range a.Weights {
		if a.Weights[i] != b.Weights[i] {
			t.Fatalf("weights differ between runs: %v and %v", a.Weights, b.Weights)
		}
	}
}

func TestWeightsValidation(t *testing.T) {
	good := []bandit.Counts{{Exposures: 10, Conversions: 1}, {Exposures: 10, Conversions: 2}}
	tests := []struct {
		field  string
		arms   []bandit.Counts
		modify func(*bandit.Config)
	}{
		{"arms", good[:1], nil},
		{"arms", []bandit.Counts{{Exposures: 10, Conversions: 11}, good[1]}, nil},
		{"arms", []bandit.Counts{{Exposures: math.NaN()}, good[1]}, nil},
		{"goal", good, func(c *bandit.Config) { c.Goal = 7 }},
		{"draws", good, func(c *bandit.Config) { c.Draws = 0 }},
		{"burn_in", good, func(c *bandit.Config) { c.BurnIn = -1 }},
		{"min_weight", good, func(c *bandit.Config) { c.MinWeight = 0.5 }},
		{"floor_scale", good, func(c *bandit.Config) { c.FloorScale = math.NaN() }},
		{"priors", good, func(c *bandit.Config) { c.Priors = []bandit.Posterior{bandit.Beta{A: 1, B: 1}} }},
		{"priors", good, func(c *bandit.Config) {
			c.Priors = []bandit.Posterior{bandit.Beta{A: 1, B: 1}, bandit.NormalInvGamma{Mu: 0, Kappa: 1, A: 1, B: 1}}
		}},
	}
	for _, tt := range tests {
		cfg := bandit.DefaultConfig()
		if tt.modify != nil {
			tt.modify(&cfg)
		}
		_, err := bandit.Weights(tt.arms, cfg)
		var ve *derrors.ValidationError
		if !errors.As(err, &ve) || ve.Fields[0].Field != tt.field {
			t.Errorf("%s: err = %v, want a ValidationError for %q", tt.field, err, tt.field)
		}
	}
}
