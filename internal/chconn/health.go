package chconn

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"
)

// Health probes every ClickHouse server lift depends on, each directly on a
// connection of its own, for /readyz and /metrics: on a cluster every replica of
// every shard (Topology), on one server that server. A client pool that fails over
// hides a dead replica, so the pool is used only to read the topology.
//
// A probe takes at most about twice Timeout; its report is reused for MaxAge, so
// /readyz and metric scrapes stay cheap however often they come. A Health is safe
// for concurrent use, and is a prometheus.Collector exporting
// lift_clickhouse_replica_up and lift_clickhouse_replica_readonly_tables per shard
// and replica.
type Health struct {
	Timeout time.Duration // one replica's probe; default 1 s
	MaxAge  time.Duration // how long a report is reused; default 5 s

	addrs    []string
	database string
	conn     driver.Conn // the pool, for system.clusters and the events table's engine

	mu      sync.Mutex
	cluster string  // "" until known, or on one server
	single  bool    // known to be one server
	shards  []Shard // the last topology read
	last    Report
}

// NewHealth returns a Health for the servers at addr (comma-separated) holding
// database. cluster is LIFT_CLICKHOUSE_CLUSTER; when empty, the Health finds out
// whether database lives on a cluster the way the stores do (ClusterOf of the events
// table) and, until it can tell, probes the addresses in addr as one shard. It fails
// only on invalid options.
func NewHealth(addr, database, cluster string) (*Health, error) {
	conn, err := Open(addr, database, time.Second)
	if err != nil {
		return nil, err
	}
	return &Health{addrs: Addrs(addr), database: database, conn: conn, cluster: cluster}, nil
}

// Close closes the pool.
func (h *Health) Close() error { return h.conn.Close() }

// Replica is what a probe found out about one server.
type Replica struct {
	Addr string
	Err  error // nil: it answered
	// ReadOnly counts the database's replicated tables on it that take no inserts:
	// a replica without its ZooKeeper (or Keeper) session, e.g. for a while after a
	// restart.
	ReadOnly int
}

// ShardHealth is the health of one shard's replicas.
type ShardHealth struct {
	Num      uint32
	Replicas []Replica
}

// Up reports whether some replica of the shard answers.
func (s ShardHealth) Up() bool {
	for _, r := range s.Replicas {
		if r.Err == nil {
			return true
		}
	}
	return false
}

// Report is one probe of every server.
type Report struct {
	Cluster string // "" on one server (or while the topology is unknown)
	Shards  []ShardHealth
	At      time.Time
}

// ErrShardDown is the kind of Report.Err's error when some shard has no replica that
// answers: its users' rows can be neither written nor read.
var ErrShardDown = errors.New("a shard has no replica that answers")

// healthError names every problem of a report; it is ErrShardDown when a shard is down.
type healthError struct {
	shardDown bool
	problems  []string
}

func (e *healthError) Error() string { return strings.Join(e.problems, "; ") }

func (e *healthError) Is(target error) bool { return target == ErrShardDown && e.shardDown }

// Err returns nil when every server answers and takes inserts. Otherwise it returns
// an error naming each shard that is down (every replica with its error; the error
// is then ErrShardDown), each replica that is down and each read-only one.
func (r Report) Err() error {
	e := &healthError{}
	for _, s := range r.Shards {
		if !s.Up() {
			e.shardDown = true
			var why []string
			for _, rep := range s.Replicas {
				why = append(why, rep.Addr+": "+rep.Err.Error())
			}
			what := "ClickHouse"
			if r.Cluster != "" {
				what = fmt.Sprintf("shard %d of cluster %s", s.Num, r.Cluster)
			}
			e.problems = append(e.problems, what+" down ("+strings.Join(why, "; ")+")")
			continue
		}
		for _, rep := range s.Replicas {
			switch {
			case rep.Err != nil:
				e.problems = append(e.problems, fmt.Sprintf("replica %s of shard %d down: %v", rep.Addr, s.Num, rep.Err))
			case rep.ReadOnly > 0:
				e.problems = append(e.problems, fmt.Sprintf("replica %s of shard %d read-only (%d tables without their ZooKeeper session)", rep.Addr, s.Num, rep.ReadOnly))
			}
		}
	}
	if len(e.problems) == 0 {
		return nil
	}
	return e
}

// Check returns the newest report, probing again when it is older than MaxAge. The
// probe runs on its own deadlines rather than ctx's, so that a caller's short
// deadline cannot leave a report of servers "down" for the next callers.
func (h *Health) Check(ctx context.Context) Report {
	h.mu.Lock()
	defer h.mu.Unlock()
	maxAge := h.MaxAge
	if maxAge <= 0 {
		maxAge = 5 * time.Second
	}
	if h.last.At.IsZero() || time.Since(h.last.At) >= maxAge {
		h.last = h.probe(context.WithoutCancel(ctx))
	}
	return h.last
}

// Available returns nil unless some shard has no replica that answers, in which
// case it returns Report.Err's error (of kind ErrShardDown). The ingest consumers
// wait for it before taking deliveries: with a shard down no insert can succeed.
func (h *Health) Available(ctx context.Context) error {
	if err := h.Check(ctx).Err(); errors.Is(err, ErrShardDown) {
		return err
	}
	return nil
}

func (h *Health) timeout() time.Duration {
	if h.Timeout <= 0 {
		return time.Second
	}
	return h.Timeout
}

// probe reads the topology and probes every replica at once. Called with h.mu held.
func (h *Health) probe(ctx context.Context) Report {
	// Until the topology is known: the configured addresses, as one shard.
	shards, cluster := []Shard{{Num: 1, Replicas: h.addrs}}, ""
	if topology := h.topology(ctx); topology != nil {
		shards, cluster = topology, h.cluster
	}
	r := Report{Cluster: cluster, Shards: make([]ShardHealth, len(shards))}
	var wg sync.WaitGroup
	for i, s := range shards {
		r.Shards[i] = ShardHealth{Num: s.Num, Replicas: make([]Replica, len(s.Replicas))}
		for j, addr := range s.Replicas {
			wg.Go(func() {
				readOnly, err := h.probeReplica(ctx, addr)
				r.Shards[i].Replicas[j] = Replica{Addr: addr, Err: err, ReadOnly: readOnly}
			})
		}
	}
	wg.Wait()
	r.At = time.Now()
	return r
}

// topology returns the cluster's shards, or nil on one server and while lift cannot
// tell (no node answers, or the database is not migrated yet). A failed read of a
// topology known before returns the one known.
func (h *Health) topology(ctx context.Context) []Shard {
	if h.single {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, h.timeout())
	defer cancel()
	if h.cluster == "" {
		cluster, err := ClusterOf(ctx, h.conn, "events")
		if err != nil {
			return nil
		}
		if cluster == "" {
			h.single = true
			return nil
		}
		h.cluster = cluster
	}
	if shards, err := Topology(ctx, h.conn, h.cluster); err == nil {
		h.shards = shards
	}
	return h.shards
}

// probeReplica asks one server, on a connection of its own, how many of the
// database's replicated tables are read-only.
func (h *Health) probeReplica(ctx context.Context, addr string) (readOnly int, err error) {
	ctx, cancel := context.WithTimeout(ctx, h.timeout())
	defer cancel()
	conn, err := clickhouse.Open(&clickhouse.Options{
		Addr:         []string{addr},
		Protocol:     clickhouse.Native,
		Auth:         clickhouse.Auth{Database: "default", Username: "default"},
		DialTimeout:  h.timeout(),
		ReadTimeout:  h.timeout(),
		MaxOpenConns: 1,
	})
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	var n uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM system.replicas WHERE database = ? AND is_readonly", h.database).Scan(&n); err != nil {
		return 0, err
	}
	return int(n), nil
}

var (
	replicaUpDesc = prometheus.NewDesc("lift_clickhouse_replica_up",
		"1 while the ClickHouse server (a replica of a shard; on one server, shard 1) answers lift's probe, else 0.",
		[]string{"shard", "replica"}, nil)
	replicaReadOnlyDesc = prometheus.NewDesc("lift_clickhouse_replica_readonly_tables",
		"Replicated tables of lift's database that are read-only on the replica (no ZooKeeper session); 0 on one server.",
		[]string{"shard", "replica"}, nil)
)

// Describe implements prometheus.Collector.
func (h *Health) Describe(ch chan<- *prometheus.Desc) {
	ch <- replicaUpDesc
	ch <- replicaReadOnlyDesc
}

// Collect implements prometheus.Collector with the newest report (Check).
func (h *Health) Collect(ch chan<- prometheus.Metric) {
	r := h.Check(context.Background())
	for _, s := range r.Shards {
		shard := strconv.FormatUint(uint64(s.Num), 10)
		for _, rep := range s.Replicas {
			up := 0.0
			if rep.Err == nil {
				up = 1
			}
			ch <- prometheus.MustNewConstMetric(replicaUpDesc, prometheus.GaugeValue, up, shard, rep.Addr)
			ch <- prometheus.MustNewConstMetric(replicaReadOnlyDesc, prometheus.GaugeValue, float64(rep.ReadOnly), shard, rep.Addr)
		}
	}
}
