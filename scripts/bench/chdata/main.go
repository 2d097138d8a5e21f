// Command chdata creates or drops the ClickHouse database holding the 10,000,000
// exposure experiment of internal/benchdata, so that `make bench` generates it once
// for every benchmark that reads it: `chdata create DB`, `chdata drop DB`. The server
// is $LIFT_TEST_CLICKHOUSE_ADDR (default 127.0.0.1:9000); with -cluster it is the
// local cluster of `scripts/services cluster up` ($LIFT_TEST_CLICKHOUSE_CLUSTER_ADDR
// and $LIFT_TEST_CLICKHOUSE_CLUSTER), where the database is created in cluster mode.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/liftlab/lift/internal/benchdata"
	"github.com/liftlab/lift/internal/testenv"
)

func main() {
	onCluster := flag.Bool("cluster", false, "on the local ClickHouse cluster")
	flag.Parse()
	if flag.NArg() != 2 || flag.Arg(0) != "create" && flag.Arg(0) != "drop" {
		fmt.Fprintln(os.Stderr, "usage: chdata [-cluster] create|drop DATABASE")
		os.Exit(2)
	}
	addr, cluster := os.Getenv("LIFT_TEST_CLICKHOUSE_ADDR"), ""
	if addr == "" {
		addr = "127.0.0.1:9000"
	}
	if *onCluster {
		addr, cluster = testenv.ClusterAddr()
	}
	ctx := context.Background()
	start := time.Now()
	var err error
	if flag.Arg(0) == "create" {
		err = benchdata.Generate(ctx, addr, flag.Arg(1), cluster)
	} else {
		err = benchdata.Drop(ctx, addr, flag.Arg(1), cluster)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "chdata:", err)
		os.Exit(1)
	}
	where := "single server " + addr
	if cluster != "" {
		where = "cluster " + cluster
	}
	fmt.Fprintf(os.Stderr, "chdata: %s %s on the %s in %.1f s\n", flag.Arg(0), flag.Arg(1), where, time.Since(start).Seconds())
}
