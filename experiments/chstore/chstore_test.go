package chstore_test

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/liftlab/lift/experiments"
	"github.com/liftlab/lift/experiments/chstore"
	"github.com/liftlab/lift/experiments/pgstore"
	"github.com/liftlab/lift/experiments/stats"
	"github.com/liftlab/lift/internal/testenv"
)

type exposure struct {
	user, variant, segment string
	at                     time.Time
}

type event struct {
	id    uuid.UUID
	typ   string
	user  string
	at    time.Time
	value float64
}

func insert(t *testing.T, addr, db string, exps []exposure, evs []event) {
	insertFor(t, addr, db, "hero", exps, evs)
}

func insertFor(t *testing.T, addr, db, experiment string, exps []exposure, evs []event) {
	t.Helper()
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{addr}, Auth: clickhouse.Auth{Database: db, Username: "default"}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	xs := make([]xrow, len(exps))
	for i, x := range exps {
		xs[i] = xrow{uuid.New(), x.at, x.user, experiment, x.variant, x.segment, 0.5}
	}
	es := make([]erow, len(evs))
	for i, e := range evs {
		es[i] = erow{e.id, e.typ, e.user, e.at, e.value, "{}"}
	}
	(&world{}).insert(t, conn, xs, es)
}

// setup creates the experiment in a fresh Postgres database and returns the results
// service over it and a fresh ClickHouse database (address and name).
func setup(t *testing.T, doc string) (*experiments.ResultsService, string, string) {
	t.Helper()
	addr, db := testenv.ClickHouse(t)
	pool, err := pgxpool.New(context.Background(), testenv.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if _, err := experiments.NewService(pgstore.New(pool)).Create(context.Background(), "test", experiments.KindExperiment, []byte(doc)); err != nil {
		t.Fatal(err)
	}
	store, err := chstore.Open(addr, db)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return &experiments.ResultsService{Store: pgstore.New(pool), Events: store}, addr, db
}

// TestResults stores a known split in ClickHouse and checks the results service
// against the statistics engine applied to the counts the data was built from.
func TestResults(t *testing.T) {
	t.Parallel()
	rs, addr, db := setup(t, `{"key":"hero","status":"running",
		"variants":[{"key":"control","weight":0.5},{"key":"bold","weight":0.5}],
		"goal":{"event":"purchase","kind":"conversion","window":"24h"},
		"metrics":[{"key":"revenue","event":"purchase","kind":"value","window":"24h"},{"key":"refunds","event":"refund","kind":"conversion","role":"guardrail"}],
		"analysis":{"cuped":false,"sequential":false,"min_users":0,"min_runtime":"0s"}}`)

	start := time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)
	var exps []exposure
	var evs []event
	// Per variant: 1000 users; conversions 100 (control) and 130 (bold) within the
	// window, each buying once for 10 + (i%5) units. Noise the results must ignore:
	// purchases after the 24 h window, purchases before exposure, a redelivered
	// duplicate of every purchase, a second exposure of the same user, and 7 users
	// exposed to both variants.
	want := map[string]struct{ users, conv, sum, sumsq float64 }{}
	for vi, variant := range []string{"control", "bold"} {
		converters := []int{100, 130}[vi]
		w := want[variant]
		for i := range 1000 {
			user := fmt.Sprintf("%s-%d", variant, i)
			at := start.Add(time.Duration(i) * time.Minute)
			day := "seg-a"
			if i%2 == 1 {
				day = "seg-b"
			}
			exps = append(exps, exposure{user, variant, day, at}, exposure{user, variant, day, at.Add(time.Hour)})
			w.users++
			switch {
			case i < converters:
				v := float64(10 + i%5)
				id := uuid.New()
				evs = append(evs, event{id, "purchase", user, at.Add(time.Hour), v}, event{id, "purchase", user, at.Add(time.Hour), v})
				w.conv++
				w.sum += v
				w.sumsq += v * v
			case i < converters+20:
				evs = append(evs, event{uuid.New(), "purchase", user, at.Add(25 * time.Hour), 50})
			case i < converters+40:
				evs = append(evs, event{uuid.New(), "purchase", user, at.Add(-time.Hour), 50})
			}
		}
		want[variant] = w
	}
	for i := range 7 {
		user := fmt.Sprintf("both-%d", i)
		exps = append(exps, exposure{user, "control", "", start}, exposure{user, "bold", "", start.Add(time.Minute)})
		evs = append(evs, event{uuid.New(), "purchase", user, start.Add(time.Hour), 99})
	}
	insert(t, addr, db, exps, evs)
	res, err := rs.Results(context.Background(), "hero")
	if err != nil {
		t.Fatal(err)
	}

	if res.MultiVariantUsers != 7 || res.Users != 2000 || res.SRM || res.DataFreshness == nil {
		t.Errorf("summary: users %v, multi %v, srm %v, freshness %v", res.Users, res.MultiVariantUsers, res.SRM, res.DataFreshness)
	}
	if len(res.Metrics) != 3 || res.Metrics[0].Role != "goal" || res.Metrics[2].Role != "guardrail" || res.Metrics[0].CUPED {
		t.Fatalf("metrics: %+v", res.Metrics)
	}
	goal := res.Metrics[0]
	expected, _ := stats.AnalyzeBinomial(stats.BinomialInput{Weights: []float64{0.5, 0.5}, Variants: []stats.VariantCounts{
		{Key: "control", Users: want["control"].users, Conversions: want["control"].conv},
		{Key: "bold", Users: want["bold"].users, Conversions: want["bold"].conv}}}, stats.DefaultOptions)
	for i, v := range goal.Variants {
		e := expected.Variants[i]
		if v.Users != e.Users || *v.Conversions != *e.Conversions || !same(v.Lift, e.Lift) || !same(v.PValue, e.PValue) {
			t.Errorf("goal %s: got users %v conv %v lift %v p %v, want %v %v %v %v", v.Key, v.Users, *v.Conversions,
				deref(v.Lift), deref(v.PValue), e.Users, *e.Conversions, deref(e.Lift), deref(e.PValue))
		}
	}
	revenue := res.Metrics[1]
	for i, variant := range []string{"control", "bold"} {
		w := want[variant]
		v := revenue.Variants[i]
		if v.Users != w.users || *v.Sum != w.sum || math.Abs(v.Value-w.sum/w.users) > 1e-12 {
			t.Errorf("revenue %s: users %v sum %v mean %v, want %v %v", variant, v.Users, *v.Sum, v.Value, w.users, w.sum)
		}
	}
	refunds := res.Metrics[2]
	if *refunds.Variants[0].Conversions != 0 || refunds.Variants[1].Lift != nil {
		t.Errorf("refunds (no events): %+v", refunds.Variants)
	}
	if len(res.Segments) != 2 || res.Segments[0].Group != "seg-a" || res.Segments[0].Variants[0].Users != 500 {
		t.Errorf("segment breakdown: %+v", res.Segments)
	}
	daily := 0.0
	for _, d := range res.Daily {
		daily += d.Variants[0].Users + d.Variants[1].Users
	}
	if daily != 2000 || len(res.Daily) < 1 {
		t.Errorf("daily breakdown sums to %v users over %d days", daily, len(res.Daily))
	}
	if res.Recommendation.Decision == "" || res.Recommendation.Reason == "" {
		t.Errorf("no recommendation: %+v", res.Recommendation)
	}
	t.Logf("recommendation: %+v", res.Recommendation)
}

func same(a, b *float64) bool {
	return (a == nil) == (b == nil) && (a == nil || math.Abs(*a-*b) < 1e-12)
}

func deref(p *float64) any {
	if p == nil {
		return nil
	}
	return *p
}

// TestResultsCUPED: users who bought before exposure buy again more often, so the
// pre-exposure period explains part of the outcome and CUPED narrows the interval.
func TestResultsCUPED(t *testing.T) {
	t.Parallel()
	rs, addr, db := setup(t, `{"key":"cup","status":"running",
		"variants":[{"key":"control","weight":0.5},{"key":"bold","weight":0.5}],"goal":{"event":"purchase","kind":"value"}}`)
	start := time.Date(2026, 11, 10, 10, 0, 0, 0, time.UTC)
	var exps []exposure
	var evs []event
	for vi, variant := range []string{"control", "bold"} {
		for i := range 2000 {
			user := fmt.Sprintf("%s-%d", variant, i)
			at := start.Add(time.Duration(i) * time.Second)
			exps = append(exps, exposure{user, variant, "", at})
			spend := float64(i%10) * 3 // loyal customers spend more, before and after
			if spend > 0 {
				evs = append(evs, event{uuid.New(), "purchase", user, at.Add(-48 * time.Hour), spend})
			}
			after := spend + float64((i*7919)%5) + float64(vi)
			evs = append(evs, event{uuid.New(), "purchase", user, at.Add(2 * time.Hour), after})
		}
	}
	insertFor(t, addr, db, "cup", exps, evs)
	res, err := rs.Results(context.Background(), "cup")
	if err != nil {
		t.Fatal(err)
	}
	goal := res.Metrics[0]
	if !goal.CUPED || goal.Theta <= 0 {
		t.Fatalf("CUPED not applied: %+v", goal)
	}
	adjusted := *goal.Variants[1].CIHigh - *goal.Variants[1].CILow
	t.Logf("CUPED θ=%.3f, interval width %.4f, lift %.4f", goal.Theta, adjusted, *goal.Variants[1].Lift)
	data, err := rs.Events.MetricAggregates(context.Background(), experiments.MetricQuery{Experiment: "cup", Event: "purchase",
		Kind: "value", Window: experiments.DefaultWindow}, experiments.Overall)
	if err != nil {
		t.Fatal(err)
	}
	var ms []stats.Moments
	for _, a := range data.Arms {
		ms = append(ms, stats.Moments{N: a.Users, Sum: a.Sum, SumSq: a.SumSq})
	}
	// Arms come ordered by variant key: bold, control.
	noCUPED, err := stats.AnalyzeMeans([]string{"control", "bold"}, []stats.Moments{ms[1], ms[0]}, stats.DefaultOptions)
	if err != nil {
		t.Fatal(err)
	}
	unadjusted := *noCUPED[1].CIHigh - *noCUPED[1].CILow
	t.Logf("without CUPED: interval width %.4f", unadjusted)
	if adjusted > 0.5*unadjusted {
		t.Errorf("CUPED interval %.4f is not much narrower than %.4f", adjusted, unadjusted)
	}
}

// data_freshness was the newest received_at stored; a row dated 2105 (stored before
// the collector stopped believing a client's received_at) made every experiment's
// data "fresh" for 80 years. It is the newest receive time up to the clock plus the
// allowed skew.
func TestDataFreshnessLeavesOutTheFuture(t *testing.T) {
	t.Parallel()
	rs, addr, db := setup(t, `{"key":"hero","status":"running",
		"variants":[{"key":"control","weight":0.5},{"key":"bold","weight":0.5}],
		"goal":{"event":"purchase","kind":"conversion","window":"24h"}}`)
	recent := time.Now().UTC().Add(-time.Minute).Truncate(time.Second)
	future := time.Date(2105, 6, 1, 0, 0, 0, 0, time.UTC)
	insert(t, addr, db, []exposure{{"u1", "control", "", recent}},
		[]event{{uuid.New(), "purchase", "u1", recent, 5}, {uuid.New(), "purchase", "mallory", future, 5}})
	res, err := rs.Results(context.Background(), "hero")
	if err != nil {
		t.Fatal(err)
	}
	if res.DataFreshness == nil || !res.DataFreshness.Equal(recent) {
		t.Errorf("data_freshness %v, want %v", res.DataFreshness, recent)
	}
}
