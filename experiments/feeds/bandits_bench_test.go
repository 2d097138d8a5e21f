package feeds_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/liftlab/lift/bandit"
	banditstore "github.com/liftlab/lift/bandit/pgstore"
	"github.com/liftlab/lift/experiments"
	"github.com/liftlab/lift/experiments/chstore"
	"github.com/liftlab/lift/experiments/feeds"
	"github.com/liftlab/lift/experiments/pgstore"
	"github.com/liftlab/lift/internal/benchdata"
	"github.com/liftlab/lift/internal/testenv"
	"github.com/liftlab/lift/migrations"
)

// BenchmarkBanditUpdate10M is one round of the bandit updater (read the counts per
// segment and arm from ClickHouse, compute the weights of the global bandit and of
// the segment "returning", publish them to Postgres) for the experiment of
// internal/benchdata, run as a bandit: 10,000,000 exposure rows of 5,000,000 users,
// 1,000,000 purchases, 4 arms. "unchanged" finds no new rows since the last round;
// "traffic" follows 1,000 exposures and 100 purchases (about ten seconds of a busy
// experiment), inserted with the timer stopped. "single" reads the single server,
// "cluster" the same rows on the local cluster (docs/deploy.md).
func BenchmarkBanditUpdate10M(b *testing.B) {
	benchdata.Each(b, banditUpdate10M)
}

func banditUpdate10M(b *testing.B, addr, db string) {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, testenv.Postgres(b))
	if err != nil {
		b.Fatal(err)
	}
	defer pool.Close()
	config := experiments.NewService(pgstore.New(pool))
	if _, err := config.Create(ctx, "bench", experiments.KindSegment, []byte(`{"key":"returning","kind":"attribute","condition":{"returning":true}}`)); err != nil {
		b.Fatal(err)
	}
	if _, err := config.Create(ctx, "bench", experiments.KindExperiment, []byte(`{"key":"big","type":"bandit","status":"running",
		"variants":[{"key":"control","weight":0.25},{"key":"v1","weight":0.25},{"key":"v2","weight":0.25},{"key":"v3","weight":0.25}],
		"goal":{"event":"purchase","kind":"conversion"},"bandit":{"per_segment":["returning"]}}`)); err != nil {
		b.Fatal(err)
	}
	events, err := chstore.Open(addr, db)
	if err != nil {
		b.Fatal(err)
	}
	defer events.Close()
	raw := migrations.OpenClickHouse(addr, db)
	defer raw.Close()
	weights := banditstore.New(pool)
	updater := &bandit.Updater{Source: &feeds.Bandits{Config: pgstore.New(pool), Events: events}, Publisher: weights,
		Log: slog.New(slog.DiscardHandler), Config: bandit.DefaultConfig()}
	now := time.Now()
	round := func(b *testing.B) {
		b.Helper()
		now = now.Add(10 * time.Second) // update_every has passed
		if err := updater.RunOnce(ctx, now); err != nil {
			b.Fatal(err)
		}
	}
	round(b) // the first computation
	b.Run("unchanged", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			round(b)
		}
		b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/update")
	})
	b.Run("traffic", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			if err := benchdata.AddTraffic(ctx, raw); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			round(b)
		}
		b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/update")
	})
	versions, err := weights.History(ctx, "big", time.Time{})
	if err != nil {
		b.Fatal(err)
	}
	total := 0.0
	for _, v := range versions {
		if v.Segment == "" {
			total = 0
			for _, c := range v.Counts {
				total += c.Exposures
			}
		}
	}
	if total < benchdata.Users {
		b.Fatalf("the last global weights count %v users, want at least %d", total, benchdata.Users)
	}
}
