// Command chdata creates or drops the ClickHouse database holding the 10,000,000
// exposure experiment of internal/benchdata, so that `make bench` generates it once
// for every benchmark that reads it: `chdata create DB`, `chdata drop DB`. The server
// is $LIFT_TEST_CLICKHOUSE_ADDR (default 127.0.0.1:9000).
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/liftlab/lift/internal/benchdata"
)

func main() {
	if len(os.Args) != 3 || os.Args[1] != "create" && os.Args[1] != "drop" {
		fmt.Fprintln(os.Stderr, "usage: chdata create|drop DATABASE")
		os.Exit(2)
	}
	addr := os.Getenv("LIFT_TEST_CLICKHOUSE_ADDR")
	if addr == "" {
		addr = "127.0.0.1:9000"
	}
	ctx := context.Background()
	start := time.Now()
	var err error
	if os.Args[1] == "create" {
		err = benchdata.Generate(ctx, addr, os.Args[2])
	} else {
		err = benchdata.Drop(ctx, addr, os.Args[2])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "chdata:", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "chdata: %s %s in %.1f s\n", os.Args[1], os.Args[2], time.Since(start).Seconds())
}
