package chstore_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/liftlab/lift/experiments"
	"github.com/liftlab/lift/experiments/chstore"
	"github.com/liftlab/lift/experiments/pgstore"
	"github.com/liftlab/lift/internal/benchdata"
	"github.com/liftlab/lift/internal/testenv"
	"github.com/liftlab/lift/migrations"
)

// BenchmarkMetric10M computes one metric (purchase conversion within 7 days) of an
// experiment with 10,000,000 exposure rows of 5,000,000 users and 1,000,000
// purchases (internal/benchdata), the size the results page must handle within a
// second:
//   - first: a metric never computed before, so every leaf is computed (each
//     iteration uses a new attribution window);
//   - plain: not lift but its yardstick, docs/analytics.md's conversion per
//     variant query over the same rows (first should take at most twice as long,
//     which first reports as x-plain, measured against the plain query run just
//     before each of its iterations);
//   - unchanged: computed before, no rows since;
//   - traffic: after 1,000 exposures and 100 purchases arrived (about ten seconds
//     of a busy experiment), inserted before each iteration with the timer stopped.
//
// Each runs on the single server ("single") and on the same rows on the local cluster
// ("cluster", docs/deploy.md), where lift computes the leaves on each shard and plain
// reads the Distributed tables.
func BenchmarkMetric10M(b *testing.B) {
	benchdata.Each(b, metric10M)
}

func metric10M(b *testing.B, addr, db string) {
	store, err := chstore.Open(addr, db)
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	raw := migrations.OpenClickHouse(addr, db)
	defer raw.Close()
	ctx := context.Background()
	q := experiments.MetricQuery{Experiment: benchdata.Experiment, Event: "purchase", Kind: "conversion", Window: experiments.DefaultWindow}
	run := func(b *testing.B, q experiments.MetricQuery) {
		b.Helper()
		data, err := store.MetricAggregates(ctx, q, experiments.Overall)
		if err != nil {
			b.Fatal(err)
		}
		users := 0.0
		for _, a := range data.Arms {
			users += a.Users
		}
		if len(data.Arms) != len(benchdata.Variants) || users < benchdata.Users {
			b.Fatalf("unexpected aggregates %+v", data)
		}
	}
	// The yardstick of "first": what an analyst's query for the same per-variant
	// numbers costs over the same rows (docs/analytics.md, conversion per variant).
	// The machine is shared, so "first" also runs it, untimed, right before each
	// computation and reports the ratio of the two (x-plain; the goal is at most 2).
	plain := plainConversionSQL(b)
	runPlain := func(b *testing.B) time.Duration {
		b.Helper()
		start := time.Now()
		rows, err := raw.QueryContext(ctx, plain)
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for rows.Next() {
			n++
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil || n != len(benchdata.Variants) {
			b.Fatalf("plain query: %d variants, %v", n, err)
		}
		return time.Since(start)
	}
	b.Run("first", func(b *testing.B) {
		var plainTime time.Duration
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			plainTime += runPlain(b)
			b.StartTimer()
			first := q
			first.Window += time.Duration(time.Now().UnixNano()%1e6) * time.Second // a metric never computed
			run(b, first)
		}
		b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/query")
		b.ReportMetric(float64(plainTime.Milliseconds())/float64(b.N), "plain-ms")
		b.ReportMetric(float64(b.Elapsed())/float64(plainTime), "x-plain")
	})
	b.Run("plain", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			runPlain(b)
		}
		b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/query")
	})
	run(b, q)
	b.Run("unchanged", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			run(b, q)
		}
		b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/query")
	})
	b.Run("traffic", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			if err := benchdata.AddTraffic(ctx, raw); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			run(b, q)
		}
		b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/query")
	})
}

// BenchmarkResults10M is the whole results API call on the same experiment: a goal,
// a revenue metric and a guardrail with a property condition (all on purchases, so
// computed in one pass), each overall and the goal by day and by segment, with the
// statistics, after the traffic of BenchmarkMetric10M's "traffic" case arrived.
// "single" reads the single server, "cluster" the same rows on the local cluster (2
// shards × 2 replicas, docs/deploy.md), where the leaves are computed on each shard
// and the traffic is inserted through the Distributed tables and replicated.
func BenchmarkResults10M(b *testing.B) {
	benchdata.Each(b, results10M)
}

func results10M(b *testing.B, addr, db string) {
	store, err := chstore.Open(addr, db)
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	raw := migrations.OpenClickHouse(addr, db)
	defer raw.Close()
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, testenv.Postgres(b))
	if err != nil {
		b.Fatal(err)
	}
	defer pool.Close()
	if _, err := experiments.NewService(pgstore.New(pool)).Create(ctx, "bench", experiments.KindExperiment, []byte(`{"key":"big","status":"running",
		"variants":[{"key":"control","weight":0.25},{"key":"v1","weight":0.25},{"key":"v2","weight":0.25},{"key":"v3","weight":0.25}],
		"goal":{"event":"purchase","kind":"conversion"},
		"metrics":[{"key":"revenue","event":"purchase","kind":"value"},
		           {"key":"pro","event":"purchase","kind":"conversion","role":"guardrail","where":{"plan":"pro"}}]}`)); err != nil {
		b.Fatal(err)
	}
	rs := &experiments.ResultsService{Store: pgstore.New(pool), Events: store}
	// The call before the timed ones computes the three metrics for the first time
	// in the first run (initial-ms; later runs find them computed, then it measures
	// what arrived since).
	initial := time.Now()
	if _, err := rs.Results(ctx, "big"); err != nil {
		b.Fatal(err)
	}
	initialMs := float64(time.Since(initial).Milliseconds())
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		if err := benchdata.AddTraffic(ctx, raw); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		res, err := rs.Results(ctx, "big")
		if err != nil {
			b.Fatal(err)
		}
		if res.Users < benchdata.Users || len(res.Metrics) != 3 || len(res.Segments) != 2 {
			b.Fatalf("unexpected results: %v users, %d metrics, %d segments", res.Users, len(res.Metrics), len(res.Segments))
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/results")
	b.ReportMetric(initialMs, "initial-ms")
}

// plainConversionSQL is docs/analytics.md's "conversion per variant" query, on the
// benchmark's experiment.
func plainConversionSQL(b *testing.B) string {
	doc, err := os.ReadFile("../../docs/analytics.md")
	if err != nil {
		b.Fatal(err)
	}
	_, after, ok := strings.Cut(string(doc), "Conversion per variant:")
	_, after, ok2 := strings.Cut(after, "```sql\n")
	query, _, ok3 := strings.Cut(after, "```")
	if !ok || !ok2 || !ok3 || !strings.Contains(query, "'hero-banner'") {
		b.Fatal("docs/analytics.md: no conversion per variant query on 'hero-banner'")
	}
	return strings.ReplaceAll(query, "'hero-banner'", "'"+benchdata.Experiment+"'")
}
