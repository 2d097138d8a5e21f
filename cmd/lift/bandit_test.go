package main

import (
	"bytes"
	"encoding/json"
	"io"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/liftlab/lift/bandit"
)

func TestBanditSimulateFlagErrors(t *testing.T) {
	t.Parallel()
	base := map[string]string{"arms": "0.5,0.4", "rounds": "100", "seeds": "2", "policy": "ts"}
	tests := []struct {
		flag, value string
	}{
		{"arms", ""},
		{"arms", "0.5,x"},
		{"arms", "0.5"},
		{"arms", "0.5,1.2"},
		{"rounds", "0"},
		{"seeds", "-3"},
		{"policy", "greedy"},
		{"policy", ""},
		{"batch", "0"},
	}
	for _, tt := range tests {
		flags := map[string]string{"batch": "1"}
		for k, v := range base {
			flags[k] = v
		}
		flags[tt.flag] = tt.value
		args := []string{"bandit", "simulate"}
		for k, v := range flags {
			args = append(args, "--"+k, v)
		}
		err := run(t.Context(), args, envFunc(nil), strings.NewReader(""), io.Discard, io.Discard)
		if err == nil || !strings.HasPrefix(err.Error(), "--"+tt.flag+":") {
			t.Errorf("--%s %q: err = %v, want it to name --%s", tt.flag, tt.value, err, tt.flag)
		}
	}
}

func TestBanditSimulateOutput(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	args := []string{"bandit", "simulate", "--arms", "0.5, 0.45,0.3", "--rounds", "5000", "--seeds", "4", "--policy", "lift", "--batch", "500"}
	if err := run(t.Context(), args, envFunc(nil), strings.NewReader(""), &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("output %q: %v", out.String(), err)
	}
	for _, k := range []string{"policy", "arms", "rounds", "seeds", "batch", "mean_regret", "stderr", "lai_robbins"} {
		if _, ok := got[k]; !ok {
			t.Errorf("output %s lacks %q", out.String(), k)
		}
	}
	// A uniform split would pay 5000 · (0.5 − 0.4167) ≈ 417.
	if r, _ := got["mean_regret"].(float64); !(r > 0 && r < 300) || got["policy"] != "lift" || got["batch"] != 500.0 {
		t.Errorf("output %s: want the lift policy, batch 500, regret well below uniform's 417", out.String())
	}
}

// TestHashRouter checks that lift's routing is a function of the user while the
// weights stay the same, and that it splits users in proportion to the weights.
func TestHashRouter(t *testing.T) {
	t.Parallel()
	weights := []float64{0.7, 0.2, 0.1}
	route := hashRouter("exp-seed")(weights)
	again := hashRouter("exp-seed")(weights)
	counts := make([]float64, len(weights))
	const users = 20_000
	for i := range users {
		id := "user-" + strconv.Itoa(i)
		arm := route(id)
		if route(id) != arm || again(id) != arm {
			t.Fatalf("user %s moved between arms under unchanged weights", id)
		}
		counts[arm]++
	}
	for i, w := range weights {
		// Binomial standard error at most √(0.25/20,000) ≈ 0.0035.
		if share := counts[i] / users; math.Abs(share-w) > 0.015 {
			t.Errorf("arm %d got %.3f of users, want %.3f", i, share, w)
		}
	}
}

// TestServedPolicyNearThompson runs the lift policy against per-round Thompson
// sampling on a reduced Chapelle–Li benchmark (docs/benchmarks-bandit.md has the full
// one, where the issue asks for at most 1.5×). Over a short horizon burn-in and the
// first equal-weight batches weigh more, hence the looser 2×.
func TestServedPolicyNearThompson(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("simulation")
	}
	arms := []float64{0.5, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4}
	cfg := bandit.SimConfig{Arms: arms, Rounds: 30_000, Seeds: 4, Batch: 1, Policy: bandit.PolicyTS}
	ts, err := bandit.Simulate(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Policy, cfg.Batch, cfg.Router = bandit.PolicyLift, 1000, hashRouter(simHashSeed)
	lift, err := bandit.Simulate(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("regret: ts %.1f ± %.1f, lift %.1f ± %.1f", ts.MeanRegret, ts.StdErr, lift.MeanRegret, lift.StdErr)
	if lift.MeanRegret > 2*ts.MeanRegret {
		t.Errorf("lift policy regret %.1f above 2 × Thompson sampling's %.1f", lift.MeanRegret, ts.MeanRegret)
	}
}
