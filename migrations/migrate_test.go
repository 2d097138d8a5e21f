package migrations_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
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
