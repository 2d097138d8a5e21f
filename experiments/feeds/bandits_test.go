package feeds_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/liftlab/lift/bandit"
	banditstore "github.com/liftlab/lift/bandit/pgstore"
	"github.com/liftlab/lift/experiments"
	"github.com/liftlab/lift/experiments/chstore"
	"github.com/liftlab/lift/experiments/feeds"
	"github.com/liftlab/lift/experiments/pgstore"
	"github.com/liftlab/lift/ingest"
	"github.com/liftlab/lift/ingest/chsink"
	"github.com/liftlab/lift/internal/testenv"
)

// TestBanditUpdateFromClickHouse runs the bandit update on the real stores: exposures
// and purchases go in through the ingest sink (each batch delivered twice, as after a
// consumer that died before its ack), the updater reads the counts per segment and
// arm through feeds.Bandits from experiments/chstore and publishes weights to
// Postgres. The published counts must equal those computed here from the events:
// users by the variant and segment of their first exposure (a later exposure to
// another arm moves nobody), a conversion or value only from a purchase after it, and
// for the bandit with a 48-hour window only the users first exposed within it. A
// second round after more traffic must count it at once. On a cluster the counts are
// computed on each shard and combined.
func TestBanditUpdateFromClickHouse(t *testing.T) {
	t.Parallel()
	testenv.ClickHouseEach(t, banditUpdateFromClickHouse)
}

func banditUpdateFromClickHouse(t *testing.T, addr, db string) {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, testenv.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	config := experiments.NewService(pgstore.New(pool))
	if _, err := config.Create(ctx, "test", experiments.KindSegment,
		[]byte(`{"key":"returning","kind":"attribute","condition":{"returning":true}}`)); err != nil {
		t.Fatal(err)
	}
	for _, doc := range []string{
		`{"key":"reco","type":"bandit","status":"running","variants":[{"key":"a"},{"key":"b"},{"key":"c"}],
		  "goal":{"event":"purchase","kind":"conversion"},"bandit":{"per_segment":["returning"]}}`,
		`{"key":"price","type":"bandit","status":"running","variants":[{"key":"x"},{"key":"y"}],
		  "goal":{"event":"purchase","kind":"value"},"bandit":{"window":"48h"}}`,
	} {
		if _, err := config.Create(ctx, "test", experiments.KindExperiment, []byte(doc)); err != nil {
			t.Fatal(err)
		}
	}

	sink, err := chsink.Open(addr, db)
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	events, err := chstore.Open(addr, db)
	if err != nil {
		t.Fatal(err)
	}
	defer events.Close()
	weights := banditstore.New(pool)
	updater := &bandit.Updater{Source: &feeds.Bandits{Config: pgstore.New(pool), Events: events}, Publisher: weights,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Config: bandit.DefaultConfig()}

	now := time.Now().UTC().Truncate(time.Second)
	base := now.Add(-2 * time.Hour)
	// want holds the counts computed here: experiment → segment ("" for the global
	// bandit) → arm.
	want := map[string]map[string][]bandit.Counts{
		"reco":  {"": make([]bandit.Counts, 3), "returning": make([]bandit.Counts, 3)},
		"price": {"": make([]bandit.Counts, 2)},
	}
	count := func(exp, segment string, arm int, converted bool, value float64) {
		segs := []string{""} // the global bandit counts everyone
		if segment != "" {
			segs = append(segs, segment)
		}
		for _, seg := range segs {
			c := want[exp][seg]
			if c == nil {
				continue // no bandit of its own in that segment
			}
			c[arm].Exposures++
			if converted {
				c[arm].Conversions++
				c[arm].Sum += value
				c[arm].SumSq += value * value
			}
		}
	}
	exposure := func(user, exp, variant, segment string, at time.Time) ingest.Event {
		return ingest.Event{ID: ingest.NewID(), Type: ingest.TypeExposure, UserID: user, Timestamp: at, ReceivedAt: now,
			Exposure: &ingest.Exposure{Experiment: exp, Variant: variant, Segment: segment, AssignmentProbability: 0.5}}
	}
	purchase := func(user string, at time.Time, value float64) ingest.Event {
		return ingest.Event{ID: ingest.NewID(), Type: ingest.TypePurchase, UserID: user, Timestamp: at, ReceivedAt: now, Value: value}
	}
	// traffic makes users [from, to): each exposed to both bandits; every fifth and
	// every seventh buys ten minutes after the first exposure, and some buy an hour
	// before it too (which counts for neither bandit).
	traffic := func(from, to int, old bool) []ingest.Event {
		var batch []ingest.Event
		for i := from; i < to; i++ {
			user := fmt.Sprintf("user-%d", i)
			first := base.Add(time.Duration(i) * time.Second)
			segment := ""
			if i%4 == 0 {
				segment = "returning"
			}
			arm := i % 3
			batch = append(batch, exposure(user, "reco", []string{"a", "b", "c"}[arm], segment, first))
			if i%10 == 3 { // later exposed to another arm as well
				batch = append(batch, exposure(user, "reco", []string{"a", "b", "c"}[(arm+1)%3], segment, first.Add(5*time.Minute)))
			}
			priceFirst := first
			if old && i%6 == 5 {
				priceFirst = now.Add(-72 * time.Hour) // outside price's 48-hour window
			}
			batch = append(batch, exposure(user, "price", []string{"x", "y"}[i%2], "", priceFirst))
			converts, value := i%5 == 0 || i%7 == 0, float64(10+i%4)
			if converts {
				batch = append(batch, purchase(user, first.Add(10*time.Minute), value))
			}
			if i%9 == 4 {
				batch = append(batch, purchase(user, first.Add(-time.Hour), 99))
			}
			count("reco", segment, arm, converts, value)
			if priceFirst.Equal(first) {
				count("price", "", i%2, converts, value)
			}
		}
		return batch
	}
	store := func(batch []ingest.Event) {
		t.Helper()
		for range 2 { // delivered again: stored once
			if err := sink.Insert(ctx, batch); err != nil {
				t.Fatal(err)
			}
		}
	}
	check := func(round int, at time.Time) {
		t.Helper()
		if err := updater.RunOnce(ctx, at); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		for exp, segments := range want {
			versions, err := weights.History(ctx, exp, time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			got := map[string][]bandit.Counts{}
			for _, v := range versions {
				if v.Version == int64(round) {
					got[v.Segment] = v.Counts
				}
			}
			if diff := cmp.Diff(segments, got); diff != "" {
				t.Errorf("round %d, %s: published counts (-want +got):\n%s", round, exp, diff)
			}
		}
	}

	store(traffic(0, 120, true))
	check(1, now)
	// The next round, once update_every has passed, sees what was stored just before.
	store(traffic(120, 200, false))
	check(2, now.Add(time.Minute))
}
