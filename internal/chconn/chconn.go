// Package chconn opens lift's ClickHouse connections the one way that works on every
// supported server: the native protocol (clickhouse-go's HTTP mode does not work on
// 18.16), connecting lazily so that a process starts, and keeps deciding, while
// ClickHouse is down.
//
// An address may list several servers, comma-separated (LIFT_CLICKHOUSE_ADDR on a
// cluster, docs/deploy.md): clickhouse-go connects to the first that answers and moves
// on to the next when one fails.
package chconn

import (
	"fmt"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Open returns a connection pool to database at addr (host:port, or several
// comma-separated). It fails only on invalid options. readTimeout bounds one query:
// inserts want it short, analytical reads longer.
func Open(addr, database string, readTimeout time.Duration) (driver.Conn, error) {
	conn, err := clickhouse.Open(&clickhouse.Options{
		Addr:        Addrs(addr),
		Protocol:    clickhouse.Native,
		Auth:        clickhouse.Auth{Database: database, Username: "default"},
		Settings:    Settings(),
		DialTimeout: 3 * time.Second,
		ReadTimeout: readTimeout,
	})
	if err != nil {
		return nil, fmt.Errorf("open ClickHouse %s/%s: %w", addr, database, err)
	}
	return conn, nil
}

// Addrs splits a comma-separated list of host:port addresses, dropping blanks.
func Addrs(addr string) []string {
	var out []string
	for a := range strings.SplitSeq(addr, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// Settings are the session settings of every lift connection. insert_distributed_sync
// matters only on a cluster, where the tables lift writes are Distributed, and changes
// nothing on a single server: an insert into a Distributed table returns once every
// shard has its rows (on one replica), instead of queueing them on the node it
// reached, so an acknowledged batch is stored and an error is the caller's to retry.
// (Current releases call it distributed_foreground_insert and accept the old name.)
//
// clickhouse-go sends only integer settings to 18.16, so a cluster's load_balancing =
// in_order, which makes a reader see what lift wrote a moment before, is set in the
// servers' default profile instead (docs/deploy.md).
func Settings() clickhouse.Settings {
	return clickhouse.Settings{"insert_distributed_sync": 1}
}
