package chaos

import (
	"context"
	"fmt"
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

// ClusterFaultsEnv must be 1 for the tests that kill nodes of the shared local
// ClickHouse cluster (scripts/services cluster up) to run. They cannot share it with
// other tests, so `make test` runs them in a serial step of their own, after the
// main `go test ./...`.
const ClusterFaultsEnv = "LIFT_TEST_CLUSTER_FAULTS"

// Cluster is a test's database on the shared local ClickHouse cluster, whose nodes
// the test may kill.
type Cluster struct {
	testenv.CHCluster
	Servers []Node // every node, in the order of CHCluster.Nodes
	t       testing.TB
}

// Node is one clickhouse-server process of the local cluster.
type Node struct {
	Name  string // ch1 … ch4
	Addr  string // native protocol
	Shard int
	dir   string // its directory under LIFT_CLUSTER_DIR (config, data, pid)
}

// KillableCluster skips the test unless LIFT_TEST_CLUSTER_FAULTS=1, then gives it
// its own migrated database on the local cluster (testenv.ClickHouseCluster) and
// makes sure, when it ends however it ends, that every node runs again (before the
// database is dropped ON CLUSTER, which needs every node).
func KillableCluster(t testing.TB) *Cluster {
	t.Helper()
	testenv.Integration(t)
	if os.Getenv(ClusterFaultsEnv) != "1" {
		t.Skip("kills nodes of the shared ClickHouse cluster, so it runs alone: `make test` runs it in its serial step (" + ClusterFaultsEnv + "=1)")
	}
	c := &Cluster{CHCluster: testenv.ClickHouseCluster(t), t: t}
	dir := os.Getenv("LIFT_CLUSTER_DIR")
	if dir == "" {
		dir = "/var/tmp/lift-cluster"
	}
	for _, addr := range c.Nodes {
		// scripts/services gives node N the native port 9100+N; shards are pairs.
		port, err := strconv.Atoi(strings.TrimPrefix(addr, "127.0.0.1:"))
		if err != nil || port < 9101 || port > 9104 {
			t.Fatalf("chaos: cluster node %s is not one of scripts/services' local nodes (127.0.0.1:9101-9104)", addr)
		}
		n := port - 9100
		c.Servers = append(c.Servers, Node{Name: "ch" + strconv.Itoa(n), Addr: addr, Shard: (n + 1) / 2,
			dir: filepath.Join(dir, "ch"+strconv.Itoa(n))})
	}
	t.Cleanup(func() { c.Up() })
	return c
}

// Kill sends SIGKILL to the nodes and waits until none accepts connections.
func (c *Cluster) Kill(nodes ...Node) {
	c.t.Helper()
	for _, n := range nodes {
		b, err := os.ReadFile(filepath.Join(n.dir, "pid"))
		if err != nil {
			c.t.Fatalf("chaos: pid of cluster node %s: %v", n.Name, err)
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			c.t.Fatalf("chaos: pid file of cluster node %s: %v", n.Name, err)
		}
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			c.t.Fatalf("chaos: kill cluster node %s (pid %d): %v", n.Name, pid, err)
		}
	}
	for _, n := range nodes {
		if !testenv.Poll(30*time.Second, func() bool { return !portOpen(n.Addr) }) {
			c.t.Fatalf("chaos: cluster node %s still listens 30 s after SIGKILL", n.Name)
		}
	}
}

// Up starts every node that is not running (scripts/services cluster up, which
// returns once each answers and reaches ZooKeeper) and returns how long that took.
func (c *Cluster) Up() time.Duration {
	c.t.Helper()
	script, err := filepath.Abs("../../scripts/services")
	if err != nil {
		c.t.Fatal(err)
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, script, "cluster", "up").CombinedOutput()
	if err != nil {
		c.t.Fatalf("chaos: scripts/services cluster up: %v\n%s", err, out)
	}
	return time.Since(start)
}

// CatchUp waits (up to limit) until node holds every event its shard's replica peer
// held when CatchUp was called (distinct event ids of events_local), and returns how
// long that took, or -1 after limit: the time a restarted replica takes to fetch
// what it missed.
func (c *Cluster) CatchUp(node, peer Node, limit time.Duration) time.Duration {
	c.t.Helper()
	ids := func(n Node) uint64 {
		db := migrations.OpenClickHouse(n.Addr, c.DB)
		defer db.Close()
		var v uint64
		if err := db.QueryRow("SELECT uniqExact(event_id) FROM events_local").Scan(&v); err != nil {
			return 0
		}
		return v
	}
	start := time.Now()
	target := ids(peer)
	if target == 0 {
		c.t.Fatalf("chaos: %s holds no events to catch up with", peer.Name)
	}
	if !testenv.Poll(limit, func() bool { return ids(node) >= target }) {
		return -1
	}
	return time.Since(start)
}

// ReplicaSums are one replica's figures of events_local with FINAL.
type ReplicaSums struct {
	Node     Node
	Rows     uint64 // rows with FINAL
	IDs      uint64 // distinct event ids
	Checksum uint64 // sum of a hash of each row's id, user, type and time
}

// Sums reads every replica's events_local figures.
func (c *Cluster) Sums() []ReplicaSums {
	c.t.Helper()
	var out []ReplicaSums
	for _, n := range c.Servers {
		db := migrations.OpenClickHouse(n.Addr, c.DB)
		s := ReplicaSums{Node: n}
		err := db.QueryRow(`SELECT count(), uniqExact(event_id),
			sum(cityHash64(toString(event_id), user_id, type, toString(ts))) FROM events_local FINAL`).Scan(&s.Rows, &s.IDs, &s.Checksum)
		db.Close()
		if err != nil {
			c.t.Fatalf("chaos: events_local on %s: %v", n.Name, err)
		}
		out = append(out, s)
	}
	return out
}

// String is "ch1 shard 1: rows … ids … checksum …".
func (s ReplicaSums) String() string {
	return fmt.Sprintf("%s (shard %d): %d rows, %d ids, checksum %x", s.Node.Name, s.Node.Shard, s.Rows, s.IDs, s.Checksum)
}
