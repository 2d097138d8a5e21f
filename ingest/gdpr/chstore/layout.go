package chstore

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/liftlab/lift/internal/chconn"
)

// localSuffix names the replicated table under a Distributed table on a cluster
// (migrations/cluster.go).
const localSuffix = "_local"

// layout is where the rows of the tables live (chconn.Layout). On one server it is
// one shard with one replica, both the connection lift already has. On a cluster the
// tables under the analysts' names are Distributed, and their rows are in the
// replicated tables <name>_local of every shard: writes (mutations, partition drops)
// go to one replica of each shard through a pool over its replicas, and the replicas
// share them through ZooKeeper; what must hold on every replica (a mutation done, no
// row left) is checked on each, through a pool to it alone.
type layout struct {
	cluster    string // "" on one server
	shards     []shard
	shardPools *chconn.Layout // the pools of the shards
	// replicaConns are the pools to single replicas, closed with the store.
	replicaConns []driver.Conn
}

type shard struct {
	num      uint32
	conn     driver.Conn // the server, or a pool over the shard's replicas
	replicas []replica
}

type replica struct {
	addr string // "" on one server
	conn driver.Conn
}

func (r replica) String() string {
	if r.addr == "" {
		return "the server"
	}
	return "replica " + r.addr
}

// layout finds out once whether lift runs on a cluster and opens the pools it needs
// there. An error (events missing, ClickHouse down) is not kept: the next call tries
// again.
func (s *Store) layout(ctx context.Context) (*layout, error) {
	s.layoutMu.Lock()
	defer s.layoutMu.Unlock()
	if s.l != nil {
		return s.l, nil
	}
	cl, err := chconn.OpenLayout(ctx, s.conn, s.database, readTimeout)
	if err != nil {
		return nil, fmt.Errorf("gdpr/chstore: find the tables' layout: %w", err)
	}
	l := &layout{cluster: cl.Cluster, shardPools: cl}
	if cl.Cluster == "" {
		l.shards = []shard{{conn: s.conn, replicas: []replica{{conn: s.conn}}}}
	}
	for i, sh := range cl.Shards {
		x := shard{num: sh.Num, conn: cl.Conns[i]}
		for _, addr := range sh.Replicas {
			c, err := chconn.Open(addr, s.database, readTimeout)
			if err != nil {
				l.close()
				return nil, fmt.Errorf("gdpr/chstore: %w", err)
			}
			l.replicaConns = append(l.replicaConns, c)
			x.replicas = append(x.replicas, replica{addr: addr, conn: c})
		}
		l.shards = append(l.shards, x)
	}
	s.l = l
	return l, nil
}

func (l *layout) close() {
	l.shardPools.Close()
	for _, c := range l.replicaConns {
		c.Close()
	}
}

// local is the table that holds the rows of table, the name analysts use.
func (l *layout) local(table string) string {
	if l.cluster == "" {
		return table
	}
	return table + localSuffix
}

// analyst is the name analysts use for the table local holds the rows of; false for
// a table that is not lift's on a cluster (no _local suffix).
func (l *layout) analyst(local string) (string, bool) {
	if l.cluster == "" {
		return local, true
	}
	return strings.CutSuffix(local, localSuffix)
}

// readTimeout bounds one query: a count over a large table, an export.
const readTimeout = 5 * time.Minute
