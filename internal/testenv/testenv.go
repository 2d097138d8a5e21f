// Package testenv gives integration tests their own Postgres database, ClickHouse
// database and RabbitMQ vhost on the services that scripts/services starts, each freshly
// created (and migrated) per call and dropped in t.Cleanup.
//
// Every helper calls Integration first, so `go test -short` skips the test. Outside
// -short an unreachable service fails the test, never skips it: `make test` and CI must
// not pass by testing nothing.
//
// Eventually and Poll are the one way tests wait for a condition to hold.
// ClickHouseEach runs a storage path's test on the single server and on the local
// ClickHouse cluster.
//
// The services are found through environment variables, with defaults matching
// scripts/services:
//
//	LIFT_TEST_POSTGRES_URL   postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable
//	LIFT_TEST_CLICKHOUSE_ADDR 127.0.0.1:9000 (native protocol)
//	LIFT_TEST_CLICKHOUSE_CLUSTER_ADDR
//	                         127.0.0.1:9101,127.0.0.1:9102,127.0.0.1:9103,127.0.0.1:9104:
//	                         every node of the cluster that `scripts/services cluster up`
//	                         starts, shard by shard
//	LIFT_TEST_CLICKHOUSE_CLUSTER lift: its name in remote_servers
//	LIFT_TEST_AMQP_URL       amqp://guest:guest@127.0.0.1:5672/
//	LIFT_TEST_RABBITMQ_API   management API base URL; default http://<amqp host>:15672,
//	                         used when it answers, else rabbitmqctl manages vhosts
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/liftlab/lift/migrations"
)

const (
	defaultPostgresURL    = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	defaultClickHouseAddr = "127.0.0.1:9000"
	defaultAMQPURL        = "amqp://guest:guest@127.0.0.1:5672/"

	defaultClusterAddr = "127.0.0.1:9101,127.0.0.1:9102,127.0.0.1:9103,127.0.0.1:9104"
	defaultClusterName = "lift"

	hint        = "start the test services with: scripts/services up"
	clusterHint = "start the test cluster with: scripts/services cluster up"

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

// CHCluster is a database on the ClickHouse cluster, made by ClickHouseCluster.
type CHCluster struct {
	Addr  string   // every node, comma-separated: what LIFT_CLICKHOUSE_ADDR would be
	Nodes []string // the same, one address each
	Name  string   // the cluster, as LIFT_CLICKHOUSE_CLUSTER would be
	DB    string   // the database
}

// ClickHouseCluster creates a fresh database lift_test_<random hex> ON CLUSTER on the
// ClickHouse cluster of $LIFT_TEST_CLICKHOUSE_CLUSTER_ADDR and applies the ClickHouse
// migrations in cluster mode: replicated local tables under Distributed ones. The
// database is dropped ON CLUSTER when the test ends. Every node must answer; a node
// that does not fails the test (outside -short). Migrating takes some 20 s on the
// local cluster, so few tests should call it.
func ClickHouseCluster(t testing.TB) CHCluster {
	t.Helper()
	if testing.Short() {
		t.Skip("ClickHouse cluster integration test: skipped with -short")
	}
	var c CHCluster
	c.Addr, c.Name = ClusterAddr()
	for a := range strings.SplitSeq(c.Addr, ",") {
		if a = strings.TrimSpace(a); a != "" {
			c.Nodes = append(c.Nodes, a)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*setupTimeout)
	defer cancel()
	for _, node := range c.Nodes {
		db := migrations.OpenClickHouse(node, "default")
		pingCtx, pingCancel := context.WithTimeout(ctx, pingTimeout)
		err := db.PingContext(pingCtx)
		pingCancel()
		db.Close()
		if err != nil {
			t.Fatalf("testenv: ClickHouse cluster node unreachable at %s: %v\n%s", node, err, clusterHint)
		}
	}

	c.DB = uniqueName(t, "lift_test_")
	t.Cleanup(func() {
		admin := migrations.OpenClickHouse(c.Addr, "default")
		defer admin.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 4*cleanupTimeout)
		defer cancel()
		if _, err := admin.ExecContext(ctx, "DROP DATABASE IF EXISTS `"+c.DB+"` ON CLUSTER `"+c.Name+"`"); err != nil {
			t.Errorf("testenv: drop ClickHouse cluster database %s: %v", c.DB, err)
		}
	})
	if err := migrations.ClickHouse(ctx, c.Addr, c.DB, migrations.WithCluster(c.Name)); err != nil {
		t.Fatalf("testenv: migrate ClickHouse cluster database %s: %v", c.DB, err)
	}
	return c
}

// ClusterAddr returns the nodes of the local test cluster, comma-separated, and its
// name: $LIFT_TEST_CLICKHOUSE_CLUSTER_ADDR and $LIFT_TEST_CLICKHOUSE_CLUSTER, or the
// cluster `scripts/services cluster up` starts.
func ClusterAddr() (addr, name string) {
	return getenv("LIFT_TEST_CLICKHOUSE_CLUSTER_ADDR", defaultClusterAddr), getenv("LIFT_TEST_CLICKHOUSE_CLUSTER", defaultClusterName)
}

// SyncReplicas waits until every replica of every replicated table of the database
// has fetched what the other replica of its shard received (SYSTEM SYNC REPLICA on
// every node): after it, a read from any replica sees every acknowledged insert.
func (c CHCluster) SyncReplicas(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	for _, node := range c.Nodes {
		db := migrations.OpenClickHouse(node, c.DB)
		err := func() error {
			defer db.Close()
			rows, err := db.QueryContext(ctx, "SELECT name FROM system.tables WHERE database = currentDatabase() AND engine LIKE 'Replicated%'")
			if err != nil {
				return err
			}
			var tables []string
			for rows.Next() {
				var name string
				if err := rows.Scan(&name); err != nil {
					rows.Close()
					return err
				}
				tables = append(tables, name)
			}
			if err := rows.Err(); err != nil {
				rows.Close()
				return err
			}
			if err := rows.Close(); err != nil {
				return err
			}
			for _, table := range tables {
				if _, err := db.ExecContext(ctx, "SYSTEM SYNC REPLICA `"+c.DB+"`.`"+table+"`"); err != nil {
					return fmt.Errorf("%s: %w", table, err)
				}
			}
			return nil
		}()
		if err != nil {
			t.Fatalf("testenv: sync replicas on %s: %v", node, err)
		}
	}
}

func redact(u *url.URL) string {
	return u.Redacted()
}
