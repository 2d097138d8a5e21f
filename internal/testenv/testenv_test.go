package testenv_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/liftlab/lift/internal/testenv"
	"github.com/liftlab/lift/migrations"
)

func TestPostgres(t *testing.T) {
	t.Parallel()
	var dbURL string
	var open *pgx.Conn
	t.Run("use", func(t *testing.T) {
		dbURL = testenv.Postgres(t)
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, dbURL)
		if err != nil {
			t.Fatal(err)
		}
		// Left open on purpose: a connection still open must not stop the cleanup
		// from dropping the database.
		open = conn
		var n int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM experiments").Scan(&n); err != nil {
			t.Fatalf("migrated database has no experiments table: %v", err)
		}
	})
	if open != nil {
		open.Close(context.Background())
	}
	if dbURL == "" {
		return // skipped under -short
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err == nil {
		conn.Close(ctx)
		t.Fatalf("database %s still exists after the test ended", dbURL)
	}
}

func TestPostgresDistinct(t *testing.T) {
	t.Parallel()
	a, b := testenv.Postgres(t), testenv.Postgres(t)
	if a == b {
		t.Fatalf("two calls returned the same database %s", a)
	}
}

func TestClickHouse(t *testing.T) {
	t.Parallel()
	var addr, db string
	t.Run("use", func(t *testing.T) {
		addr, db = testenv.ClickHouse(t)
		conn := migrations.OpenClickHouse(addr, db)
		defer conn.Close()
		var n uint64
		if err := conn.QueryRow("SELECT count() FROM events").Scan(&n); err != nil {
			t.Fatalf("migrated database has no events table: %v", err)
		}
	})
	if db == "" {
		return
	}
	conn := migrations.OpenClickHouse(addr, "default")
	defer conn.Close()
	var n uint64
	if err := conn.QueryRow("SELECT count() FROM system.databases WHERE name = ?", db).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("ClickHouse database %s still exists after the test ended", db)
	}
}

func TestAMQPURL(t *testing.T) {
	t.Parallel()
	var vhostURL string
	t.Run("use", func(t *testing.T) {
		vhostURL = testenv.AMQPURL(t)
		conn, err := amqp.Dial(vhostURL)
		if err != nil {
			t.Fatalf("dial %s: %v", vhostURL, err)
		}
		defer conn.Close()
		ch, err := conn.Channel()
		if err != nil {
			t.Fatal(err)
		}
		q, err := ch.QueueDeclare("probe", false, true, false, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := ch.PublishWithContext(ctx, "", q.Name, false, false, amqp.Publishing{Body: []byte("hi")}); err != nil {
			t.Fatal(err)
		}
		for {
			msg, ok, err := ch.Get(q.Name, true)
			if err != nil {
				t.Fatal(err)
			}
			if ok {
				if string(msg.Body) != "hi" {
					t.Fatalf("got %q, want hi", msg.Body)
				}
				break
			}
			if ctx.Err() != nil {
				t.Fatal("message never arrived")
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
	if vhostURL == "" {
		return
	}
	conn, err := amqp.Dial(vhostURL)
	if err == nil {
		conn.Close()
		t.Fatalf("vhost %s still exists after the test ended", vhostURL)
	}
}

// fakeTB records how a helper ends the test instead of ending the real one.
type fakeTB struct {
	testing.TB
	skipped bool
	fatal   string
}

type stop struct{}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Skip(args ...any) {
	f.skipped = true
	panic(stop{})
}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.fatal = fmt.Sprintf(format, args...)
	panic(stop{})
}

func run(t *testing.T, fn func(testing.TB)) *fakeTB {
	f := &fakeTB{TB: t}
	func() {
		defer func() {
			if r := recover(); r != nil {
				if _, ok := r.(stop); !ok {
					panic(r)
				}
			}
		}()
		fn(f)
	}()
	return f
}

func TestUnreachableFails(t *testing.T) {
	if testing.Short() {
		t.Skip("the helpers skip under -short before looking at the services")
	}
	// Port 1 on loopback refuses connections at once.
	t.Setenv("LIFT_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:1/postgres?sslmode=disable")
	t.Setenv("LIFT_TEST_CLICKHOUSE_ADDR", "127.0.0.1:1")
	t.Setenv("LIFT_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:1/")
	for name, fn := range map[string]func(testing.TB){
		"postgres":   func(tb testing.TB) { testenv.Postgres(tb) },
		"clickhouse": func(tb testing.TB) { testenv.ClickHouse(tb) },
		"amqp":       func(tb testing.TB) { testenv.AMQPURL(tb) },
	} {
		t.Run(name, func(t *testing.T) {
			f := run(t, fn)
			if f.skipped {
				t.Fatal("an unreachable service must fail the test, not skip it")
			}
			if !strings.Contains(f.fatal, "scripts/services up") {
				t.Fatalf("failure message %q does not tell how to start the services", f.fatal)
			}
		})
	}
}

func TestIntegrationSkipsShort(t *testing.T) {
	f := run(t, testenv.Integration)
	if f.skipped != testing.Short() {
		t.Fatalf("Integration skipped=%v with testing.Short()=%v", f.skipped, testing.Short())
	}
}

func TestClickHouseCluster(t *testing.T) {
	var c testenv.CHCluster
	t.Run("use", func(t *testing.T) {
		c = testenv.ClickHouseCluster(t)
		conn := migrations.OpenClickHouse(c.Addr, c.DB)
		defer conn.Close()
		if _, err := conn.Exec(`INSERT INTO segment_changes (ts, user_id, segment, kind, expires_at, recorded_at)
			SELECT now(), concat('u', toString(number)), 's', 'enter', now(), now() FROM system.numbers LIMIT 100`); err != nil {
			t.Fatal(err)
		}
		c.SyncReplicas(t)
		// Every node reads every shard through the Distributed table, and the replicas
		// of a shard hold the same rows.
		var local []uint64
		for _, node := range c.Nodes {
			db := migrations.OpenClickHouse(node, c.DB)
			var all, mine uint64
			err := db.QueryRow("SELECT (SELECT count() FROM segment_changes), (SELECT count() FROM segment_changes_local)").Scan(&all, &mine)
			db.Close()
			if err != nil {
				t.Fatal(err)
			}
			if all != 100 {
				t.Errorf("node %s reads %d rows through the Distributed table, want 100", node, all)
			}
			local = append(local, mine)
		}
		if len(local) == 4 && (local[0] != local[1] || local[2] != local[3] || local[0]+local[2] != 100) {
			t.Errorf("rows per node %v: want two equal pairs summing to 100", local)
		}
	})
	if c.DB == "" {
		return
	}
	for _, node := range c.Nodes {
		conn := migrations.OpenClickHouse(node, "default")
		var n uint64
		err := conn.QueryRow("SELECT count() FROM system.databases WHERE name = ?", c.DB).Scan(&n)
		conn.Close()
		if err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("database %s still exists on %s after the test ended", c.DB, node)
		}
	}
}
