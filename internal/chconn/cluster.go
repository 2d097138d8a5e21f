package chconn

import (
	"context"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Lift needs no setting to know it runs on a cluster: `lift migrate` with
// LIFT_CLICKHOUSE_CLUSTER makes events a Distributed table, whose engine names the
// cluster. Adapters that read system tables, which describe only the node they are
// connected to, ask ClusterOf and then look at every shard (Topology).

var reDistributed = regexp.MustCompile("^Distributed\\(\\s*['`]?(\\w+)['`]?\\s*,")

// ClusterOf returns the cluster that table of the connection's database is a
// Distributed table on, or "" when it is an ordinary table (one server). It returns an
// error if the table does not exist or the server cannot be reached.
func ClusterOf(ctx context.Context, conn driver.Conn, table string) (string, error) {
	var engine string
	err := conn.QueryRow(ctx, "SELECT engine_full FROM system.tables WHERE database = currentDatabase() AND name = ?", table).Scan(&engine)
	if err != nil {
		return "", fmt.Errorf("look up table %s: %w", table, err)
	}
	if m := reDistributed.FindStringSubmatch(engine); m != nil {
		return m[1], nil
	}
	return "", nil
}

// Shard is one shard of a cluster: the native addresses of its replicas, as the
// nodes reach them, in the cluster's order.
type Shard struct {
	Num      uint32
	Replicas []string
}

// Remote is a remote() table function reading the system table table of one replica
// of the shard (the first that answers, with load_balancing = in_order).
func (s Shard) Remote(table string) string {
	return "remote('" + strings.Join(s.Replicas, "|") + "', system, " + table + ")"
}

// Topology returns the shards of cluster as system.clusters of the connected node
// describes them. It returns an error if the cluster is unknown.
func Topology(ctx context.Context, conn driver.Conn, cluster string) ([]Shard, error) {
	rows, err := conn.Query(ctx, `SELECT shard_num, host_address, port FROM system.clusters
		WHERE cluster = ? ORDER BY shard_num, replica_num`, cluster)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: %w", cluster, err)
	}
	defer rows.Close()
	var shards []Shard
	for rows.Next() {
		var num uint32
		var host string
		var port uint16
		if err := rows.Scan(&num, &host, &port); err != nil {
			return nil, fmt.Errorf("cluster %s: %w", cluster, err)
		}
		if len(shards) == 0 || shards[len(shards)-1].Num != num {
			shards = append(shards, Shard{Num: num})
		}
		addr := net.JoinHostPort(host, fmt.Sprint(port))
		shards[len(shards)-1].Replicas = append(shards[len(shards)-1].Replicas, addr)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cluster %s: %w", cluster, err)
	}
	if len(shards) == 0 {
		return nil, fmt.Errorf("cluster %s: not in system.clusters", cluster)
	}
	return shards, nil
}

// Layout is where a database's tables live: on the one server lift is connected to,
// or on the shards of a cluster.
type Layout struct {
	// Cluster is the cluster events is a Distributed table on; "" on one server.
	Cluster string
	// Shards are the cluster's shards and Conns a connection pool to the database on
	// each, over the shard's replicas, in the same order. Both are empty on one
	// server.
	Shards []Shard
	Conns  []driver.Conn
}

// OpenLayout finds out, through conn to database, whether lift runs on a cluster
// (ClusterOf events) and then opens a pool to every shard of it (Topology), whose
// queries time out after readTimeout. It returns an error, and leaves no pool open,
// if events does not exist, the cluster is unknown or the server cannot be reached.
func OpenLayout(ctx context.Context, conn driver.Conn, database string, readTimeout time.Duration) (*Layout, error) {
	cluster, err := ClusterOf(ctx, conn, "events")
	if err != nil {
		return nil, err
	}
	if cluster == "" {
		return &Layout{}, nil
	}
	shards, err := Topology(ctx, conn, cluster)
	if err != nil {
		return nil, err
	}
	l := &Layout{Cluster: cluster, Shards: shards}
	for _, sh := range shards {
		c, err := Open(strings.Join(sh.Replicas, ","), database, readTimeout)
		if err != nil {
			l.Close()
			return nil, err
		}
		l.Conns = append(l.Conns, c)
	}
	return l, nil
}

// Close closes the shards' pools.
func (l *Layout) Close() error {
	var errs []error
	for _, c := range l.Conns {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}
