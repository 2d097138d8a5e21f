// Package chconn opens lift's ClickHouse connections the one way that works on every
// supported server: the native protocol (clickhouse-go's HTTP mode does not work on
// 18.16), connecting lazily so that a process starts, and keeps deciding, while
// ClickHouse is down.
package chconn

import (
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Open returns a connection pool to database at addr (host:port). It fails only on
// invalid options. readTimeout bounds one query: inserts want it short, analytical
// reads longer.
func Open(addr, database string, readTimeout time.Duration) (driver.Conn, error) {
	conn, err := clickhouse.Open(&clickhouse.Options{
		Addr:        []string{addr},
		Protocol:    clickhouse.Native,
		Auth:        clickhouse.Auth{Database: database, Username: "default"},
		DialTimeout: 3 * time.Second,
		ReadTimeout: readTimeout,
	})
	if err != nil {
		return nil, fmt.Errorf("open ClickHouse %s/%s: %w", addr, database, err)
	}
	return conn, nil
}
