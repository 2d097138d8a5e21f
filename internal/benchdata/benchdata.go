// Package benchdata generates the large experiment the results and bandit updater
// benchmarks read: 10,000,000 exposure rows of 5,000,000 users and 1,000,000
// purchases in ClickHouse. Generating it takes a minute or two, so `make bench`
// (scripts/benchmarks) generates it once, into the database named by
// LIFT_BENCH_CLICKHOUSE_DB, for every benchmark of the run, and drops it afterwards
// (`go run ./scripts/bench/chdata create|drop DB`).
package benchdata

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/liftlab/lift/migrations"
)

// The experiment's shape. Users u0…u4999999 are each exposed twice, 500,000 seconds
// apart, to one of the variants (by hash); 30% of them in the bandit segment
// "returning"; every fifth user (u0, u5, …) buys once, for 10 to 16, within hours of
// the first exposure.
const (
	Experiment = "big"
	Exposures  = 10_000_000
	Users      = 5_000_000
	Purchases  = 1_000_000
	Segment    = "returning"
)

// Variants are the experiment's variants, control first.
var Variants = []string{"control", "v1", "v2", "v3"}

var generate = []string{
	`INSERT INTO exposures (event_id, ts, user_id, experiment, variant, segment, assignment_probability)
	 SELECT generateUUIDv4(), toDateTime('2026-11-01 00:00:00') + intDiv(number, 10), concat('u', toString(number % 5000000)),
	        'big', arrayElement(['control', 'v1', 'v2', 'v3'], (cityHash64(number % 5000000) % 4) + 1),
	        if(cityHash64(number % 5000000, 'segment') % 10 < 3, 'returning', ''), 0.25
	 FROM system.numbers LIMIT 10000000`,
	`INSERT INTO events (event_id, type, user_id, ts, received_at, value, properties)
	 SELECT generateUUIDv4(), 'purchase', concat('u', toString(number * 5)), toDateTime('2026-11-01 00:00:00') + intDiv(number * 5, 10) + 3600,
	        now(), 10 + number % 7, if(number % 3 = 0, '{"plan":"pro"}', '{"plan":"free"}')
	 FROM system.numbers LIMIT 1000000`,
}

// Generate migrates database and fills it with the experiment unless it holds it
// already.
func Generate(ctx context.Context, addr, database string) error {
	if err := migrations.ClickHouse(ctx, addr, database); err != nil {
		return err
	}
	db := migrations.OpenClickHouse(addr, database)
	defer db.Close()
	var n uint64
	if err := db.QueryRowContext(ctx, "SELECT count() FROM exposures WHERE experiment = 'big'").Scan(&n); err != nil {
		return fmt.Errorf("benchdata: %w", err)
	}
	if n >= Exposures {
		return nil
	}
	for _, q := range append([]string{"TRUNCATE TABLE exposures", "TRUNCATE TABLE events"}, generate...) {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("benchdata: %w", err)
		}
	}
	return waitMerges(ctx, db, database)
}

// waitMerges waits (at most ten minutes) until ClickHouse has no merge of database
// running: merging the parts of 10,000,000 fresh rows takes minutes of CPU, which
// would otherwise be taken from the benchmarks that run next.
func waitMerges(ctx context.Context, db *sql.DB, database string) error {
	for deadline := time.Now().Add(10 * time.Minute); time.Now().Before(deadline); {
		var n uint64
		if err := db.QueryRowContext(ctx, "SELECT count() FROM system.merges WHERE database = ?", database).Scan(&n); err != nil {
			return fmt.Errorf("benchdata: %w", err)
		}
		if n == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
	return nil // still merging: the benchmarks run anyway
}

// Drop removes the database.
func Drop(ctx context.Context, addr, database string) error {
	db := migrations.OpenClickHouse(addr, "default")
	defer db.Close()
	_, err := db.ExecContext(ctx, "DROP DATABASE IF EXISTS `"+database+"`")
	return err
}

// AddTraffic inserts what a busy experiment of this size receives in about ten
// seconds: 1,000 exposures (500 of new users, 500 of existing ones) and 100
// purchases of existing users within their attribution window.
func AddTraffic(ctx context.Context, db *sql.DB) error {
	for _, q := range []string{
		`INSERT INTO exposures (event_id, ts, user_id, experiment, variant, segment, assignment_probability)
		 SELECT generateUUIDv4(), toDateTime('2026-11-12 12:00:00'), concat('n', toString(generateUUIDv4())), 'big',
		        arrayElement(['control', 'v1', 'v2', 'v3'], (number % 4) + 1), '', 0.25
		 FROM system.numbers LIMIT 500`,
		`INSERT INTO exposures (event_id, ts, user_id, experiment, variant, segment, assignment_probability)
		 SELECT generateUUIDv4(), toDateTime('2026-11-12 12:00:00'), concat('u', toString(u)), 'big',
		        arrayElement(['control', 'v1', 'v2', 'v3'], (cityHash64(u) % 4) + 1),
		        if(cityHash64(u, 'segment') % 10 < 3, 'returning', ''), 0.25
		 FROM (SELECT rand(number) % 5000000 AS u FROM system.numbers LIMIT 500)`,
		`INSERT INTO events (event_id, type, user_id, ts, received_at, value, properties)
		 SELECT generateUUIDv4(), 'purchase', concat('u', toString(u)), toDateTime('2026-11-01 00:00:00') + intDiv(u, 10) + 7200,
		        now(), 12, '{"plan":"pro"}'
		 FROM (SELECT rand(number) % 5000000 AS u FROM system.numbers LIMIT 100)`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("benchdata: add traffic: %w", err)
		}
	}
	return nil
}

// ClickHouse returns the address and database of the experiment for a benchmark. It
// skips unless LIFT_BENCH_CLICKHOUSE is set, since plain `go test -bench` should not
// fill ClickHouse. With LIFT_BENCH_CLICKHOUSE_DB it uses that database, generating
// the data if missing; otherwise it generates a database of its own and drops it when
// the benchmark ends.
func ClickHouse(b testing.TB) (addr, database string) {
	b.Helper()
	if os.Getenv("LIFT_BENCH_CLICKHOUSE") == "" {
		b.Skip("set LIFT_BENCH_CLICKHOUSE=1 to run against ClickHouse")
	}
	addr = os.Getenv("LIFT_TEST_CLICKHOUSE_ADDR")
	if addr == "" {
		addr = "127.0.0.1:9000"
	}
	ctx := context.Background()
	database = os.Getenv("LIFT_BENCH_CLICKHOUSE_DB")
	if database == "" {
		buf := make([]byte, 6)
		if _, err := rand.Read(buf); err != nil {
			b.Fatal(err)
		}
		database = "lift_bench_" + hex.EncodeToString(buf)
		b.Cleanup(func() {
			if err := Drop(context.Background(), addr, database); err != nil {
				b.Errorf("drop %s: %v", database, err)
			}
		})
	}
	if err := Generate(ctx, addr, database); err != nil {
		b.Fatal(err)
	}
	return addr, database
}
