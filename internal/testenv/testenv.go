// Package testenv gives integration tests their own Postgres database, ClickHouse
// database and RabbitMQ vhost on the services that scripts/services starts, each freshly
// created (and migrated) per call and dropped in t.Cleanup.
//
// Every helper calls Integration first, so `go test -short` skips the test. Outside
// -short an unreachable service fails the test, never skips it: `make test` and CI must
// not pass by testing nothing.
//
// Eventually and Poll are the one way tests wait for a condition to hold.
//
// The services are found through environment variables, with defaults matching
// scripts/services:
//
//	LIFT_TEST_POSTGRES_URL   postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable
//	LIFT_TEST_CLICKHOUSE_ADDR 127.0.0.1:9000 (native protocol)
//	LIFT_TEST_AMQP_URL       amqp://guest:guest@127.0.0.1:5672/
//	LIFT_TEST_RABBITMQ_API   management API base URL; default http://<amqp host>:15672,
//	                         used when it answers, else rabbitmqctl manages vhosts
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/liftlab/lift/migrations"
)

const (
	defaultPostgresURL    = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	defaultClickHouseAddr = "127.0.0.1:9000"
	defaultAMQPURL        = "amqp://guest:guest@127.0.0.1:5672/"

	hint = "start the test services with: scripts/services up"

	setupTimeout   = 2 * time.Minute
	cleanupTimeout = 30 * time.Second
	pingTimeout    = 5 * time.Second
)

// Integration marks t as an integration test: it is skipped under `go test -short`.
func Integration(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: skipped with -short")
	}
}

func getenv(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// uniqueName returns prefix followed by 16 random hex digits: a valid identifier in
// Postgres, ClickHouse and RabbitMQ alike.
func uniqueName(t testing.TB, prefix string) string {
	t.Helper()
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("testenv: random name: %v", err)
	}
	return prefix + hex.EncodeToString(b)
}

// Postgres creates a fresh database lift_test_<random hex> on the server of
// $LIFT_TEST_POSTGRES_URL, applies the Postgres migrations to it and returns its URL.
// The database is dropped, with any connection still open to it, when the test ends.
func Postgres(t testing.TB) string {
	t.Helper()
	Integration(t)
	base := getenv("LIFT_TEST_POSTGRES_URL", defaultPostgresURL)
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		t.Fatalf("testenv: LIFT_TEST_POSTGRES_URL=%q is not a postgres:// URL", base)
	}

	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	pingCtx, pingCancel := context.WithTimeout(ctx, pingTimeout)
	admin, err := pgx.Connect(pingCtx, base)
	pingCancel()
	if err != nil {
		t.Fatalf("testenv: Postgres unreachable at %s: %v\n%s", redact(u), err, hint)
	}
	defer admin.Close(context.Background())

	name := uniqueName(t, "lift_test_")
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("testenv: create Postgres database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("testenv: drop Postgres database %s: %v", name, err)
			return
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("testenv: drop Postgres database %s: %v", name, err)
		}
	})

	u.Path = "/" + name
	u.RawPath = ""
	dbURL := u.String()
	if err := migrations.Postgres(ctx, dbURL); err != nil {
		t.Fatalf("testenv: migrate Postgres database %s: %v", name, err)
	}
	return dbURL
}

// ClickHouse creates a fresh database lift_test_<random hex> on the ClickHouse server
// at $LIFT_TEST_CLICKHOUSE_ADDR (native protocol), applies the ClickHouse migrations to it
// and returns the server address and the database name. The database is dropped when
// the test ends.
func ClickHouse(t testing.TB) (addr, db string) {
	t.Helper()
	Integration(t)
	addr = getenv("LIFT_TEST_CLICKHOUSE_ADDR", defaultClickHouseAddr)

	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	admin := migrations.OpenClickHouse(addr, "default")
	pingCtx, pingCancel := context.WithTimeout(ctx, pingTimeout)
	err := admin.PingContext(pingCtx)
	pingCancel()
	if err != nil {
		admin.Close()
		t.Fatalf("testenv: ClickHouse unreachable at %s: %v\n%s", addr, err, hint)
	}

	db = uniqueName(t, "lift_test_")
	t.Cleanup(func() {
		defer admin.Close()
		ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
		defer cancel()
		if _, err := admin.ExecContext(ctx, "DROP DATABASE IF EXISTS `"+db+"`"); err != nil {
			t.Errorf("testenv: drop ClickHouse database %s: %v", db, err)
		}
	})
	if err := migrations.ClickHouse(ctx, addr, db); err != nil {
		t.Fatalf("testenv: migrate ClickHouse database %s: %v", db, err)
	}
	return addr, db
}

func redact(u *url.URL) string {
	return u.Redacted()
}
