package chaos

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/liftlab/lift/internal/testenv"
	"github.com/liftlab/lift/migrations"
)

// ClickHouse is a private ClickHouse server: the machine's config.xml and users.xml
// copied with other ports and with data and logs in the test's directory.
type ClickHouse struct {
	t    testing.TB
	dir  string
	Port int
	proc *child
}

// StartClickHouse starts a private server and kills it when the test ends.
func StartClickHouse(t testing.TB) *ClickHouse {
	t.Helper()
	testenv.Integration(t) // before the slow start, not after
	dir := t.TempDir()
	c := &ClickHouse{t: t, dir: dir, Port: freePort(t)}
	conf, err := os.ReadFile("/etc/clickhouse-server/config.xml")
	if err != nil {
		t.Fatalf("chaos: ClickHouse config (scripts/services installs the server): %v", err)
	}
	s := strings.NewReplacer(
		"/var/lib/clickhouse/", dir+"/data/",
		"/var/log/clickhouse-server/", dir+"/log/",
		"<tcp_port>9000</tcp_port>", "<tcp_port>"+strconv.Itoa(c.Port)+"</tcp_port>",
		"<http_port>8123</http_port>", "<http_port>"+strconv.Itoa(freePort(t))+"</http_port>",
		"<interserver_http_port>9009</interserver_http_port>", "<interserver_http_port>"+strconv.Itoa(freePort(t))+"</interserver_http_port>",
	).Replace(string(conf))
	users, err := os.ReadFile("/etc/clickhouse-server/users.xml")
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"config.xml": []byte(s), "users.xml": users} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		if c.running() {
			c.Stop(syscall.SIGKILL)
		}
	})
	c.Start()
	return c
}

// Addr is the native protocol address.
func (c *ClickHouse) Addr() string { return "127.0.0.1:" + strconv.Itoa(c.Port) }

// Start runs the server (again, after Stop) and waits until it answers a query.
func (c *ClickHouse) Start() {
	c.t.Helper()
	cmd := exec.Command("/usr/sbin/clickhouse-server", "--config-file="+filepath.Join(c.dir, "config.xml"))
	cmd.Dir = c.dir
	proc, err := startChild(cmd, filepath.Join(c.dir, "server.out"))
	if err != nil {
		c.t.Fatalf("chaos: start clickhouse-server: %v", err)
	}
	c.proc = proc
	db := migrations.OpenClickHouse(c.Addr(), "default")
	defer db.Close()
	if !testenv.Poll(2*time.Minute, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return db.PingContext(ctx) == nil
	}) {
		c.t.Fatalf("chaos: private ClickHouse did not answer on %s", c.Addr())
	}
}

func (c *ClickHouse) running() bool { return c.proc.alive() }

// Stop ends the server with sig (SIGTERM: a clean stop; SIGKILL: a crash) and waits
// until it is gone.
func (c *ClickHouse) Stop(sig syscall.Signal) {
	c.t.Helper()
	c.proc.signalGroup(sig)
	select {
	case <-c.proc.exited:
	case <-time.After(time.Minute):
		c.proc.signalGroup(syscall.SIGKILL)
		<-c.proc.exited
	}
}

// Database creates and migrates a database for one scenario.
func (c *ClickHouse) Database(name string) string {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := migrations.ClickHouse(ctx, c.Addr(), name); err != nil {
		c.t.Fatalf("chaos: migrate private ClickHouse: %v", err)
	}
	return name
}
