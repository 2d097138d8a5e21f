package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/liftlab/lift/bandit"
	"github.com/liftlab/lift/experiments"
	"github.com/liftlab/lift/internal/derrors"
)

// simHashSeed is the experiment hash seed of the simulated lift policy; the user ids
// are random, so any seed will do.
const simHashSeed = "bandit-simulate"

// banditSimulate runs `lift bandit simulate` and prints the result as one JSON object.
func banditSimulate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bandit simulate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	arms := fs.String("arms", "", "comma-separated true conversion rates of the arms, e.g. 0.5,0.45")
	rounds := fs.Int("rounds", 0, "rounds (users) per simulation")
	seeds := fs.Int("seeds", 0, "independent simulations to average over")
	policy := fs.String("policy", "", "ts, ucb1, egreedy, uniform or lift")
	batch := fs.Int("batch", 1, "rounds between updates of what the policy knows")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	means, err := parseArms(*arms)
	if err != nil {
		return fmt.Errorf("--arms: %w", err)
	}
	res, err := bandit.Simulate(ctx, bandit.SimConfig{
		Arms: means, Rounds: *rounds, Seeds: *seeds, Policy: *policy, Batch: *batch,
		Router: hashRouter(simHashSeed),
	})
	if ve, ok := errors.AsType[*derrors.ValidationError](err); ok {
		return fmt.Errorf("--%s: %s", ve.Fields[0].Field, ve.Fields[0].Message)
	}
	if err != nil {
		return err
	}
	return json.NewEncoder(stdout).Encode(res)
}

func parseArms(s string) ([]float64, error) {
	if s == "" {
		return nil, errors.New("required")
	}
	var means []float64
	for f := range strings.SplitSeq(s, ",") {
		mu, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil {
			return nil, fmt.Errorf("%q is not a number", f)
		}
		means = append(means, mu)
	}
	return means, nil
}

// hashRouter routes users as the decision path does: the version 2 hash of the user id
// with the experiment's seed, into bucket ranges built from the weights.
func hashRouter(seed string) bandit.Router {
	return func(weights []float64) func(string) int {
		ranges := experiments.BucketRanges(len(weights), 1, weights)
		return func(userID string) int {
			n, _ := experiments.Hash(seed, userID, 2)
			return experiments.ChooseVariation(n, ranges)
		}
	}
}
