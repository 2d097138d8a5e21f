// Command recmodel prepares scripts/bench-http's /v1/recommend benchmark in a lift
// database: a model of 10,000 items with 50 neighbours each for the recommender
// "similar" (trained on 50,000 synthetic users), and the recent items of 10,000 users
// (bench-user-1 … bench-user-10000, 20 items each) as the segment engine would have
// published them. The recommender document itself is created through the API.
//
//	go run ./scripts/bench/recmodel POSTGRES_URL
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/liftlab/lift/experiments"
	"github.com/liftlab/lift/experiments/recommend"
	recpg "github.com/liftlab/lift/experiments/recommend/pgstore"
	"github.com/liftlab/lift/segments"
	segpg "github.com/liftlab/lift/segments/pgstore"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: recmodel POSTGRES_URL")
		os.Exit(2)
	}
	if err := run(context.Background(), os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "recmodel:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, url string) error {
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return err
	}
	defer pool.Close()
	rng := rand.New(rand.NewPCG(3, 4))
	sku := func(i int) string { return fmt.Sprintf("sku-%05d", i%10_000) }
	b := recommend.NewBuilder()
	for u := range 50_000 {
		base := rng.IntN(10_000)
		for range 20 {
			b.Add(fmt.Sprintf("train-%d", u), sku(base+rng.IntN(200)), 1)
		}
	}
	var popular []recommend.ItemWeight
	for i := range 200 {
		popular = append(popular, recommend.ItemWeight{Item: sku(i * 37), Weight: float64(200 - i)})
	}
	m := recommend.Train(b, popular, recommend.Params{})
	if _, err := recpg.New(pool).Save(ctx, "similar", m); err != nil {
		return err
	}
	r := experiments.Recommender{Key: "similar"}
	var changes []segments.FeatureChange
	for u := 1; u <= 10_000; u++ {
		base := rng.IntN(10_000)
		recent := make([]string, 20)
		for i := range recent {
			recent[i] = sku(base + rng.IntN(200))
		}
		v, _ := json.Marshal(recent)
		changes = append(changes, segments.FeatureChange{UserID: fmt.Sprintf("bench-user-%d", u), Feature: r.FeatureKey(),
			At: time.Now(), Value: v})
	}
	return segpg.New(pool).ApplyFeatures(ctx, changes)
}
