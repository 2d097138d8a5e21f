package testenv

import "testing"

// ClickHouseEach runs test twice, as parallel subtests with fresh migrated databases:
// "single" on the single server (ClickHouse) and "cluster" on the local cluster
// (ClickHouseCluster), where the tables lift reads and writes are Distributed tables
// over replicated local tables. The integration tests of lift's storage paths call it,
// so that `make test` checks them on both deployments (docs/deploy.md). test gets the
// address (every node, comma-separated, on the cluster) and the database, as lift's
// LIFT_CLICKHOUSE_ADDR and LIFT_CLICKHOUSE_DB would name them.
//
// The cluster's database takes some 20 s to migrate, so test should do all its work
// in the one database it is given rather than ask for more.
func ClickHouseEach(t *testing.T, test func(t *testing.T, addr, db string)) {
	t.Helper()
	t.Run("single", func(t *testing.T) {
		t.Parallel()
		addr, db := ClickHouse(t)
		test(t, addr, db)
	})
	t.Run("cluster", func(t *testing.T) {
		t.Parallel()
		c := ClickHouseCluster(t)
		test(t, c.Addr, c.DB)
	})
}
