package migrations_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/liftlab/lift/migrations"
)

// These tests cannot use internal/testenv, which imports this package, so they set up
// their databases by hand.

func randomName(t testing.TB) string {
	t.Helper()
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "lift_migtest_" + hex.EncodeToString(b)
}

func getenv(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func TestPostgres(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("integration test: needs Postgres (scripts/services up)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	base := getenv("LIFT_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable")
	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("Postgres unreachable at %s (run scripts/services up): %v", base, err)
	}
	t.Cleanup(func() { admin.Close(context.Background()) })

	name := randomName(t)
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})

	// Two migrators at once: one creates the database, the other must cope; the advisory
	// lock serialises the migrations themselves.
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Go(func() { errs[i] = migrations.Postgres(ctx, u.String()) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("concurrent migration %d: %v", i, err)
		}
	}
	// A later run is a no-op.
	if err := migrations.Postgres(ctx, u.String()); err != nil {
		t.Fatalf("second migration: %v", err)
	}

	conn, err := pgx.Connect(ctx, u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	for _, table := range []string{"experiments", "flags", "segments", "saved_groups", "api_keys", "users", "audit_log"} {
		var ok bool
		if err := conn.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", "public."+table).Scan(&ok); err != nil {
			t.Fatal(err)
		}
		if !ok {
			t.Errorf("table %s missing after migration", table)
		}
	}
	var applied int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM "+migrations.VersionTable+" WHERE version_id > 0").Scan(&applied); err != nil {
		t.Fatal(err)
	}
	files, err := migrationCount("postgres")
	if err != nil {
		t.Fatal(err)
	}
	if applied != files {
		t.Errorf("version table has %d applied migrations, want %d (one per file, no duplicates)", applied, files)
	}
}

func TestClickHouse(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("integration test: needs ClickHouse (scripts/services up)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	addr := getenv("LIFT_TEST_CLICKHOUSE_ADDR", "127.0.0.1:9000")
	admin := migrations.OpenClickHouse(addr, "default")
	t.Cleanup(func() { admin.Close() })
	if err := admin.PingContext(ctx); err != nil {
		t.Fatalf("ClickHouse unreachable at %s (run scripts/services up): %v", addr, err)
	}
	name := randomName(t)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(ctx, "DROP DATABASE IF EXISTS `"+name+"`"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})

	for i := range 2 {
		if err := migrations.ClickHouse(ctx, addr, name); err != nil {
			t.Fatalf("migration run %d: %v", i+1, err)
		}
	}

	for _, table := range []string{"events", "exposures", "segment_changes", migrations.VersionTable} {
		var n uint64
		if err := admin.QueryRowContext(ctx,
			"SELECT count() FROM system.tables WHERE database = ? AND name = ?", name, table,
		).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Errorf("table %s missing after migration", table)
		}
	}
	var applied uint64
	if err := admin.QueryRowContext(ctx,
		"SELECT count() FROM `"+name+"`."+migrations.VersionTable+" WHERE version_id > 0",
	).Scan(&applied); err != nil {
		t.Fatal(err)
	}
	files, err := migrationCount("clickhouse")
	if err != nil {
		t.Fatal(err)
	}
	if int(applied) != files {
		t.Errorf("version table has %d applied migrations, want %d (second run must be a no-op)", applied, files)
	}
}

func TestClickHouseRejectsBadName(t *testing.T) {
	err := migrations.ClickHouse(context.Background(), "127.0.0.1:1", "lift; DROP DATABASE x")
	if err == nil {
		t.Fatal("want an error for an invalid database name")
	}
}

func migrationCount(engine string) (int, error) {
	fsys, err := migrations.FS(engine)
	if err != nil {
		return 0, err
	}
	names, err := fs.Glob(fsys, "*.sql")
	return len(names), err
}

// clusterNodes are the nodes of the local cluster that `scripts/services cluster up`
// starts: shard 1 is the first two, shard 2 the last two.
var clusterNodes = []string{"127.0.0.1:9101", "127.0.0.1:9102", "127.0.0.1:9103", "127.0.0.1:9104"}

func TestClickHouseCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: needs the ClickHouse cluster (scripts/services cluster up)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	nodes := make([]*sql.DB, len(clusterNodes))
	for i, addr := range clusterNodes {
		nodes[i] = migrations.OpenClickHouse(addr, "default")
		t.Cleanup(func() { nodes[i].Close() })
		if err := nodes[i].PingContext(ctx); err != nil {
			t.Fatalf("ClickHouse cluster node unreachable at %s (run scripts/services cluster up): %v", addr, err)
		}
	}
	name := randomName(t)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := nodes[0].ExecContext(ctx, "DROP DATABASE IF EXISTS `"+name+"` ON CLUSTER lift"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})

	// The first run through a list of addresses, the second through another node: it
	// must find every migration applied (the version table is replicated).
	if err := migrations.ClickHouse(ctx, clusterNodes[0]+","+clusterNodes[2], name, migrations.WithCluster("lift")); err != nil {
		t.Fatalf("migration run 1: %v", err)
	}
	if err := migrations.ClickHouse(ctx, clusterNodes[3], name, migrations.WithCluster("lift")); err != nil {
		t.Fatalf("migration run 2: %v", err)
	}
	files, err := migrationCount("clickhouse")
	if err != nil {
		t.Fatal(err)
	}
	q := func(db *sql.DB, query string, args ...any) uint64 {
		t.Helper()
		var n uint64
		if err := db.QueryRowContext(ctx, query, args...).Scan(&n); err != nil {
			t.Fatalf("%s: %v", query, err)
		}
		return n
	}
	for i, db := range nodes {
		if _, err := db.ExecContext(ctx, "SYSTEM SYNC REPLICA `"+name+"`."+migrations.VersionTable); err != nil {
			t.Fatal(err)
		}
		if n := q(db, "SELECT count() FROM `"+name+"`."+migrations.VersionTable+" WHERE version_id > 0"); int(n) != files {
			t.Errorf("node %s: %d applied migrations, want %d (the second run must be a no-op)", clusterNodes[i], n, files)
		}
		for table, engine := range map[string]string{
			"events": "Distributed", "events_local": "ReplicatedReplacingMergeTree",
			"exposures": "Distributed", "first_exposures_local": "ReplicatedAggregatingMergeTree",
			"first_exposures_mv": "MaterializedView", "metric_nodes": "Distributed",
		} {
			if n := q(db, "SELECT count() FROM system.tables WHERE database = ? AND name = ? AND engine = ?", name, table, engine); n != 1 {
				t.Errorf("node %s: no %s table %s", clusterNodes[i], engine, table)
			}
		}
	}

	// Inserted through the Distributed tables, each user's rows land on one shard, the
	// views aggregate them there, and reads through the Distributed tables see all.
	db := migrations.OpenClickHouse(clusterNodes[0], name)
	t.Cleanup(func() { db.Close() })
	const users, rows = 200, 2000
	for _, insert := range []string{
		fmt.Sprintf(`INSERT INTO events (event_id, type, user_id, ts, received_at, value, properties)
			SELECT generateUUIDv4(), 'buy', concat('u', toString(number %% %d)), now(), now(), 1, '{"a":1}' FROM system.numbers LIMIT %d`, users, rows),
		fmt.Sprintf(`INSERT INTO exposures (event_id, ts, user_id, experiment, variant, segment, assignment_probability)
			SELECT generateUUIDv4(), now(), concat('u', toString(number %% %d)), 'exp', 'a', '', 0.5 FROM system.numbers LIMIT %d`, users, rows),
	} {
		if _, err := db.ExecContext(ctx, insert); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range nodes {
		for _, table := range []string{"events_local", "exposures_local", "first_exposures_local"} {
			if _, err := n.ExecContext(ctx, "SYSTEM SYNC REPLICA `"+name+"`."+table); err != nil {
				t.Fatal(err)
			}
		}
	}
	if n := q(db, "SELECT count() FROM events WHERE type = 'buy' AND visitParamExtractInt(properties, 'a') = 1"); n != rows {
		t.Errorf("events through the Distributed table: %d rows, want %d", n, rows)
	}
	if n := q(db, "SELECT count() FROM events WHERE personalization = 1 AND bucket = toUInt16(cityHash64(user_id) % 65536) AND length(prop_keys) = 1"); n != rows {
		t.Errorf("events with their DEFAULT and MATERIALIZED columns: %d rows, want %d", n, rows)
	}
	if n := q(db, "SELECT uniqExact(user_id) FROM (SELECT user_id, argMinMerge(variant) AS v FROM first_exposures GROUP BY experiment, user_id) WHERE v = 'a'"); n != users {
		t.Errorf("first_exposures through the Distributed table: %d users, want %d", n, users)
	}
	local := func(i int, table string) uint64 {
		return q(nodes[i], "SELECT count() FROM `"+name+"`."+table)
	}
	for _, table := range []string{"events_local", "exposures_local"} {
		s1, s2 := local(0, table), local(2, table)
		if s1 == 0 || s2 == 0 || s1+s2 != rows {
			t.Errorf("%s: %d rows on shard 1 and %d on shard 2, want both some and %d in all", table, s1, s2, rows)
		}
		if r1, r2 := local(1, table), local(3, table); r1 != s1 || r2 != s2 {
			t.Errorf("%s: replicas differ: shard 1 %d/%d, shard 2 %d/%d", table, s1, r1, s2, r2)
		}
	}
	// Users never span shards: the users of shard 1 and shard 2 are disjoint.
	if n := q(nodes[0], "SELECT count() FROM `"+name+"`.events_local WHERE user_id IN (SELECT user_id FROM remote('"+clusterNodes[2]+"', `"+name+"`, events_local))"); n != 0 {
		t.Errorf("%d rows of shard 1 belong to users that shard 2 has too", n)
	}
}
