package migrations

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io/fs"
	"os"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

// TestClickHouseBucketRebuild migrates a database to version 40, stores rows, then
// applies the rest: 00041 rebuilds exposures and events sorted by bucket, and the
// rows, the aggregate views and the new bucket counts must all be there afterwards.
func TestClickHouseBucketRebuild(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("integration test: needs ClickHouse (scripts/services up)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	addr := os.Getenv("LIFT_TEST_CLICKHOUSE_ADDR")
	if addr == "" {
		addr = "127.0.0.1:9000"
	}
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	name := "lift_test_" + hex.EncodeToString(b)
	admin := OpenClickHouse(addr, "default")
	t.Cleanup(func() { admin.Close() })
	t.Cleanup(func() {
		if _, err := admin.ExecContext(context.Background(), "DROP DATABASE IF EXISTS `"+name+"`"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})

	all, err := FS("clickhouse")
	if err != nil {
		t.Fatal(err)
	}
	before := fstest.MapFS{}
	entries, err := fs.ReadDir(all, ".")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() < "00041" {
			data, err := fs.ReadFile(all, e.Name())
			if err != nil {
				t.Fatal(err)
			}
			before[e.Name()] = &fstest.MapFile{Data: data}
		}
	}
	if err := clickhouseUp(ctx, addr, name, before, newOptions(nil)); err != nil {
		t.Fatal(err)
	}
	db := OpenClickHouse(addr, name)
	defer db.Close()
	for _, q := range []string{
		`INSERT INTO exposures (event_id, ts, user_id, experiment, variant, segment, assignment_probability)
		 SELECT generateUUIDv4(), toDateTime('2026-11-01 00:00:00') + number, concat('u', toString(number % 100)), 'e', 'a', '', 1
		 FROM system.numbers LIMIT 300`,
		`INSERT INTO events (event_id, type, user_id, ts, received_at, value, properties, personalization)
		 SELECT generateUUIDv4(), 'purchase', concat('u', toString(number)), toDateTime('2026-11-01 00:00:00'), now(), 1, '{}', number % 2
		 FROM system.numbers LIMIT 50`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	if err := ClickHouse(ctx, addr, name); err != nil {
		t.Fatal(err)
	}
	// After the rebuild: new rows still reach the views.
	if _, err := db.ExecContext(ctx, `INSERT INTO exposures (event_id, ts, user_id, experiment, variant, segment, assignment_probability)
		SELECT generateUUIDv4(), toDateTime('2026-10-01 00:00:00'), 'late', 'e', 'b', '', 1 FROM system.numbers LIMIT 1`); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		query string
		want  uint64
	}{
		{"SELECT count() FROM exposures", 301},
		{"SELECT count() FROM events", 50},
		{"SELECT countIf(personalization = 0) FROM events", 25},
		{"SELECT countIf(bucket = toUInt16(cityHash64(user_id) % 65536)) FROM exposures", 301},
		{"SELECT uniqExact(user_id) FROM first_exposures", 101},
		{"SELECT toUInt64(sum(rows)) FROM bucket_rows WHERE source = 'exposures' AND key = 'e'", 301},
		{"SELECT toUInt64(sum(rows)) FROM bucket_rows WHERE source = 'events' AND key = 'purchase'", 50},
		{"SELECT toUInt64(sum(rows_0 + rows_1 + rows_2 + rows_3)) FROM bucket_rows WHERE source = 'exposures' AND key = 'e'", 301},
		{"SELECT toUInt64(sum(rows_0 + rows_1 + rows_2 + rows_3)) FROM bucket_rows WHERE source = 'events' AND key = 'purchase'", 50},
		// Every leaf counts the exposures of its users (the formula of 00043).
		{`SELECT toUInt64(countIf(r != c)) FROM (
		    SELECT toUInt32(bucket * 4 + k) AS leaf, [r0, r1, r2, r3][k + 1] AS r
		    FROM (SELECT bucket, sum(rows_0) AS r0, sum(rows_1) AS r1, sum(rows_2) AS r2, sum(rows_3) AS r3
		          FROM bucket_rows WHERE source = 'exposures' GROUP BY bucket)
		    ARRAY JOIN [0, 1, 2, 3] AS k)
		  ANY FULL OUTER JOIN (SELECT toUInt32(cityHash64(user_id) % 65536 * 4 + intDiv(cityHash64(user_id), 65536) % 4) AS leaf, count() AS c
		  FROM exposures GROUP BY leaf) USING leaf`, 0},
		{"SELECT count() FROM system.tables WHERE database = currentDatabase() AND name LIKE '%\\_v_'", 0},
	} {
		var got uint64
		if err := db.QueryRowContext(ctx, c.query).Scan(&got); err != nil {
			t.Fatalf("%s: %v", c.query, err)
		}
		if got != c.want {
			t.Errorf("%s = %d, want %d", c.query, got, c.want)
		}
	}
	var key string
	if err := db.QueryRowContext(ctx, "SELECT sorting_key FROM system.tables WHERE database = currentDatabase() AND name = 'events'").Scan(&key); err != nil {
		// 18.16 has no sorting_key column; the create statement tells.
		if err := db.QueryRowContext(ctx, "SELECT create_table_query FROM system.tables WHERE database = currentDatabase() AND name = 'events'").Scan(&key); err != nil {
			t.Fatal(err)
		}
	}
	if !strings.Contains(key, "type, bucket, user_id, event_id") {
		t.Errorf("events sorted by %q", key)
	}
}
