package chconn

import (
	"context"
	"fmt"
	"net"
	"regexp"
	"strings"

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
