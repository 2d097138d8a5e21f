// Package benchdata generates the large experiment the results and bandit updater
// benchmarks read: 10,000,000 exposure rows of 5,000,000 users and 1,000,000
// purchases in ClickHouse, on the single server and, for the benchmarks' "cluster"
// cases, on the local cluster (docs/deploy.md). Generating it takes a minute or two
// on one server and a few more on the cluster, so `make bench` (scripts/benchmarks)
// generates it once, into the databases named by LIFT_BENCH_CLICKHOUSE_DB and
// LIFT_BENCH_CLICKHOUSE_CLUSTER_DB, for every benchmark of the run, and drops them
// afterwards (`go run ./scripts/bench/chdata [-cluster] create|drop DB`).
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

	"github.com/liftlab/lift/internal/chconn"
	"github.com/liftlab/lift/internal/testenv"
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
// already. With a cluster name, addr lists the cluster's nodes and database is
// migrated and filled in cluster mode: the rows go through the Distributed tables
// to the shard of their user and are replicated there.
func Generate(ctx context.Context, addr, database, cluster string) error {
	var opts []migrations.Option
	truncate := []string{"TRUNCATE TABLE exposures", "TRUNCATE TABLE events"}
	if cluster != "" {
		opts = append(opts, migrations.WithCluster(cluster))
		truncate = []string{
			"TRUNCATE TABLE `" + database + "`.exposures_local ON CLUSTER `" + cluster + "`",
			"TRUNCATE TABLE `" + database + "`.events_local ON CLUSTER `" + cluster + "`",
		}
	}
	if err := migrations.ClickHouse(ctx, addr, database, opts...); err != nil {
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
	for _, q := range append(truncate, generate...) {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("benchdata: %w", err)
		}
	}
	if cluster == "" {
		return settle(ctx, db, database)
	}
	for _, node := range chconn.Addrs(addr) {
		conn := migrations.OpenClickHouse(node, database)
		err := settle(ctx, conn, database)
		conn.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", node, err)
		}
	}
	return nil
}

// settle waits (at most ten minutes) until the server of db has no merge of database
// running and, on a cluster's node, no replication task queued: merging the parts of
// 10,000,000 fresh rows, and fetching them to the other replica of each shard, takes
// minutes of CPU, which would otherwise be taken from the benchmarks that run next.
func settle(ctx context.Context, db *sql.DB, database string) error {
	for deadline := time.Now().Add(10 * time.Minute); time.Now().Before(deadline); {
		var n uint64
		if err := db.QueryRowContext(ctx, `SELECT (SELECT count() FROM system.merges WHERE database = ?)
			+ (SELECT count() FROM system.replication_queue WHERE database = ?)`, database, database).Scan(&n); err != nil {
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
	return nil // still busy: the benchmarks run anyway
}

// Drop removes the database, from every node of cluster if it is not "".
func Drop(ctx context.Context, addr, database, cluster string) error {
	db := migrations.OpenClickHouse(addr, "default")
	defer db.Close()
	q := "DROP DATABASE IF EXISTS `" + database + "`"
	if cluster != "" {
		q += " ON CLUSTER `" + cluster + "`"
	}
	_, err := db.ExecContext(ctx, q)
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

// ClickHouse returns the address and database of the experiment on the single server
// for a benchmark. It skips unless LIFT_BENCH_CLICKHOUSE is set, since plain `go test
// -bench` should not fill ClickHouse. With LIFT_BENCH_CLICKHOUSE_DB it uses that
// database, generating the data if missing; otherwise it generates a database of its
// own and drops it when the benchmark ends.
func ClickHouse(b testing.TB) (addr, database string) {
	b.Helper()
	addr = os.Getenv("LIFT_TEST_CLICKHOUSE_ADDR")
	if addr == "" {
		addr = "127.0.0.1:9000"
	}
	return addr, open(b, addr, "", "LIFT_BENCH_CLICKHOUSE_DB")
}

// ClickHouseCluster is ClickHouse on the local cluster (testenv.ClusterAddr), with
// the database LIFT_BENCH_CLICKHOUSE_CLUSTER_DB; addr lists every node.
func ClickHouseCluster(b testing.TB) (addr, database string) {
	b.Helper()
	addr, cluster := testenv.ClusterAddr()
	return addr, open(b, addr, cluster, "LIFT_BENCH_CLICKHOUSE_CLUSTER_DB")
}

// Each runs bench as the sub-benchmarks "single" (ClickHouse) and "cluster"
// (ClickHouseCluster), one after the other in the same run.
func Each(b *testing.B, bench func(b *testing.B, addr, database string)) {
	b.Run("single", func(b *testing.B) {
		addr, db := ClickHouse(b)
		bench(b, addr, db)
	})
	b.Run("cluster", func(b *testing.B) {
		addr, db := ClickHouseCluster(b)
		bench(b, addr, db)
	})
}

func open(b testing.TB, addr, cluster, dbVar string) string {
	b.Helper()
	if os.Getenv("LIFT_BENCH_CLICKHOUSE") == "" {
		b.Skip("set LIFT_BENCH_CLICKHOUSE=1 to run against ClickHouse")
	}
	database := os.Getenv(dbVar)
	if database == "" {
		buf := make([]byte, 6)
		if _, err := rand.Read(buf); err != nil {
			b.Fatal(err)
		}
		database = "lift_bench_" + hex.EncodeToString(buf)
		b.Cleanup(func() {
			if err := Drop(context.Background(), addr, database, cluster); err != nil {
				b.Errorf("drop %s: %v", database, err)
			}
		})
	}
	if err := Generate(context.Background(), addr, database, cluster); err != nil {
		b.Fatal(err)
	}
	return database
}
