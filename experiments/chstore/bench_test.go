package chstore_test

import (
	"context"
	"os"
	"testing"

	"github.com/liftlab/lift/experiments"
	"github.com/liftlab/lift/experiments/chstore"
	"github.com/liftlab/lift/migrations"
)

// BenchmarkMetric10M computes the goal metric of an experiment with 10,000,000
// exposure rows (5,000,000 users) and 1,000,000 purchases, the size the results page
// must handle within a second. The data (about 20 s to generate) stays in the
// database lift_bench_results between runs. It runs only when LIFT_BENCH_CLICKHOUSE
// is set (scripts/benchmarks sets it), since plain `go test -bench` should not fill
// ClickHouse.
func BenchmarkMetric10M(b *testing.B) {
	if os.Getenv("LIFT_BENCH_CLICKHOUSE") == "" {
		b.Skip("set LIFT_BENCH_CLICKHOUSE=1 to run against ClickHouse")
	}
	const addr, db = "127.0.0.1:9000", "lift_bench_results"
	ctx := context.Background()
	if err := migrations.ClickHouse(ctx, addr, db); err != nil {
		b.Fatal(err)
	}
	conn := migrations.OpenClickHouse(addr, db)
	defer conn.Close()
	var n uint64
	if err := conn.QueryRowContext(ctx, "SELECT count() FROM exposures WHERE experiment = 'big'").Scan(&n); err != nil {
		b.Fatal(err)
	}
	if n != 10_000_000 {
		for _, q := range []string{
			"TRUNCATE TABLE exposures", "TRUNCATE TABLE events",
			`INSERT INTO exposures (event_id, ts, user_id, experiment, variant, segment, assignment_probability)
			 SELECT generateUUIDv4(), toDateTime('2026-11-01 00:00:00') + intDiv(number, 10), concat('u', toString(number % 5000000)),
			        'big', if(cityHash64(number % 5000000) % 2 = 0, 'control', 'bold'), '', 0.5
			 FROM system.numbers LIMIT 10000000`,
			`INSERT INTO events (event_id, type, user_id, ts, received_at, value, properties)
			 SELECT generateUUIDv4(), 'purchase', concat('u', toString(number * 5)), toDateTime('2026-11-01 12:00:00') + number,
			        now(), 10, '{}'
			 FROM system.numbers LIMIT 1000000`,
			"OPTIMIZE TABLE events FINAL",
		} {
			if _, err := conn.ExecContext(ctx, q); err != nil {
				b.Fatal(err)
			}
		}
	}
	store, err := chstore.Open(addr, db)
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	q := experiments.MetricQuery{Experiment: "big", Event: "purchase", Kind: "conversion", Window: experiments.DefaultWindow}
	for b.Loop() {
		data, err := store.MetricAggregates(ctx, q, experiments.Overall)
		if err != nil {
			b.Fatal(err)
		}
		if len(data.Arms) != 2 || data.Arms[0].Users+data.Arms[1].Users != 5_000_000 {
			b.Fatalf("unexpected aggregates %+v", data)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/query")
}
