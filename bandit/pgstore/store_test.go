package pgstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/liftlab/lift/bandit"
	"github.com/liftlab/lift/bandit/pgstore"
	experimentspg "github.com/liftlab/lift/experiments/pgstore"
	"github.com/liftlab/lift/internal/testenv"
)

// Publications become numbered versions that the decision snapshot loads, latest per
// segment, and that History returns in order.
func TestPublishAndHistory(t *testing.T) {
	t.Parallel()
	pool, err := pgxpool.New(context.Background(), testenv.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	s := pgstore.New(pool)
	ctx := context.Background()
	pub := func(segment string, w0 float64) bandit.Publication {
		return bandit.Publication{Experiment: "reco", Segment: segment, Variants: []string{"a", "b"},
			Counts: []bandit.Counts{{Exposures: 100, Conversions: 5}, {Exposures: 100, Conversions: 9}},
			Result: bandit.Result{Weights: []float64{w0, 1 - w0}, PBest: []float64{0.1, 0.9},
				Posteriors: []bandit.Summary{{Mean: 0.05}, {Mean: 0.09}}}}
	}
	for _, w := range []float64{0.5, 0.3, 0.1} {
		if err := s.Publish(ctx, []bandit.Publication{pub("", w), pub("mobile", w/2)}); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := experimentspg.New(pool).LoadConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.BanditWeights) != 2 {
		t.Fatalf("latest weights: %+v", cfg.BanditWeights)
	}
	for _, w := range cfg.BanditWeights {
		want := map[string]float64{"": 0.1, "mobile": 0.05}[w.Segment]
		if w.Version != 3 || w.Weights[0] != want {
			t.Errorf("segment %q: version %d weights %v, want 3 and %v", w.Segment, w.Version, w.Weights, want)
		}
	}
	h, err := s.History(ctx, "reco", time.Now().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != 6 || h[0].Version != 1 || h[5].Version != 3 || h[0].Counts[1].Conversions != 9 || h[0].PBest[1] != 0.9 {
		t.Errorf("history: %+v", h)
	}
}
