package chstore_test

import (
	"fmt"
	"testing"

	"github.com/liftlab/lift/internal/testenv"
	"github.com/liftlab/lift/migrations"
)

// storage is a test's database: on the single server, or on the local cluster (two
// shards of two replicas), where the tables analysts read are Distributed tables
// over replicated <name>_local tables.
type storage struct {
	addr, db string
	cluster  *testenv.CHCluster // nil on the single server
}

// onBoth runs test on a fresh database on the single server and on another on the
// local cluster.
func onBoth(t *testing.T, test func(t *testing.T, st storage)) {
	t.Run("server", func(t *testing.T) {
		t.Parallel()
		addr, db := testenv.ClickHouse(t)
		test(t, storage{addr: addr, db: db})
	})
	t.Run("cluster", func(t *testing.T) {
		t.Parallel()
		c := testenv.ClickHouseCluster(t)
		test(t, storage{addr: c.Addr, db: c.DB, cluster: &c})
	})
}

// count runs a count query through addr (every node of the cluster: the
// Distributed tables read every shard).
func (st storage) count(t *testing.T, query string) uint64 {
	t.Helper()
	return countOn(t, st.addr, st.db, query)
}

// replica is one place rows are stored: the single server, or one node of the
// cluster with its shard.
type replica struct {
	addr  string
	shard int // 1 or 2 on the cluster, 0 on the single server
}

// replicas lists where rows are stored. The local cluster's nodes are 9101 and
// 9102 (shard 1), 9103 and 9104 (shard 2), in testenv's order.
func (st storage) replicas() []replica {
	if st.cluster == nil {
		return []replica{{addr: st.addr}}
	}
	var out []replica
	for i, n := range st.cluster.Nodes {
		out = append(out, replica{addr: n, shard: 1 + i*2/len(st.cluster.Nodes)})
	}
	return out
}

// local is the table that stores table's rows on a replica.
func (st storage) local(table string) string {
	if st.cluster == nil {
		return table
	}
	return table + "_local"
}

// countEach runs a count query on every replica; %s in query stands for the local
// table of table.
func (st storage) countEach(t *testing.T, query, table string) map[replica]uint64 {
	t.Helper()
	out := map[replica]uint64{}
	for _, r := range st.replicas() {
		out[r] = countOn(t, r.addr, st.db, fmt.Sprintf(query, st.local(table)))
	}
	return out
}

// sync waits, on the cluster, until every replica has what the other replica of its
// shard received.
func (st storage) sync(t *testing.T) {
	t.Helper()
	if st.cluster != nil {
		st.cluster.SyncReplicas(t)
	}
}

func countOn(t *testing.T, addr, db, query string) uint64 {
	t.Helper()
	conn := migrations.OpenClickHouse(addr, db)
	defer conn.Close()
	var n uint64
	if err := conn.QueryRow(query).Scan(&n); err != nil {
		t.Fatalf("%s on %s: %v", query, addr, err)
	}
	return n
}

func execOn(t *testing.T, addr, db, query string) {
	t.Helper()
	conn := migrations.OpenClickHouse(addr, db)
	defer conn.Close()
	if _, err := conn.Exec(query); err != nil {
		t.Fatalf("%s on %s: %v", query, addr, err)
	}
}
