package chaos

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/liftlab/lift/internal/testenv"
	"github.com/liftlab/lift/migrations"
)

// Postgres is a private PostgreSQL cluster (initdb in the test's directory, run as
// the postgres user, trust authentication on a free loopback port).
type Postgres struct {
	t    testing.TB
	dir  string
	Port int
}

const pgBin = "/usr/lib/postgresql/15/bin/"

// StartPostgres creates and starts a private cluster and stops it when the test ends.
func StartPostgres(t testing.TB) *Postgres {
	t.Helper()
	testenv.Integration(t) // before the slow start, not after
	dir, err := os.MkdirTemp("", "lift-chaos-pg-")
	if err != nil {
		t.Fatal(err)
	}
	p := &Postgres{t: t, dir: dir, Port: freePort(t)}
	t.Cleanup(func() {
		if p.Running() {
			_ = p.pgctl("stop", "-m", "immediate")
		}
		os.RemoveAll(dir)
	})
	// initdb and postgres refuse to run as root; the cluster belongs to postgres.
	if out, err := exec.Command("chown", "postgres:postgres", dir).CombinedOutput(); err != nil {
		t.Fatalf("chaos: chown %s: %v %s", dir, err, out)
	}
	if out, err := p.asPostgres(pgBin+"initdb", "-D", filepath.Join(dir, "data"), "-A", "trust", "-U", "postgres").CombinedOutput(); err != nil {
		t.Fatalf("chaos: initdb: %v\n%s", err, out)
	}
	p.Start()
	return p
}

func (p *Postgres) asPostgres(name string, args ...string) *exec.Cmd {
	return exec.Command("runuser", append([]string{"-u", "postgres", "--", name}, args...)...)
}

func (p *Postgres) pgctl(args ...string) error {
	all := append([]string{"-D", filepath.Join(p.dir, "data"), "-w", "-t", "120"}, args...)
	if out, err := p.asPostgres(pgBin+"pg_ctl", all...).CombinedOutput(); err != nil {
		return fmt.Errorf("pg_ctl %v: %w\n%s", args, err, out)
	}
	return nil
}

// Start starts the cluster (again, after Stop) and waits until it accepts connections.
func (p *Postgres) Start() {
	p.t.Helper()
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200", p.Port, p.dir)
	if err := p.pgctl("-o", opts, "-l", filepath.Join(p.dir, "log"), "start"); err != nil {
		p.t.Fatalf("chaos: start private Postgres: %v", err)
	}
}

// Stop stops the cluster: fast mode, so open sessions are ended as in an outage.
func (p *Postgres) Stop() {
	p.t.Helper()
	if err := p.pgctl("stop", "-m", "fast"); err != nil {
		p.t.Fatal(err)
	}
}

// Running reports whether the server accepts connections.
func (p *Postgres) Running() bool { return portOpen("127.0.0.1:" + strconv.Itoa(p.Port)) }

// Database creates and migrates a database and returns its URL.
func (p *Postgres) Database(name string) string {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	base := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/", p.Port)
	conn, err := pgx.Connect(ctx, base+"postgres?sslmode=disable")
	if err != nil {
		p.t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		p.t.Fatal(err)
	}
	url := base + name + "?sslmode=disable"
	if err := migrations.Postgres(ctx, url); err != nil {
		p.t.Fatal(err)
	}
	return url
}
