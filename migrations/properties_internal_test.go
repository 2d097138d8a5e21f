package migrations

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"testing"
	"testing/fstest"
	"time"

	"github.com/liftlab/lift/ingest"
)

// TestClickHouseEventProperties migrates a database to version 44, stores events,
// then applies 00046: the existing rows must get their top-level properties in
// prop_keys, prop_types, prop_strings and prop_numbers, as ingest.ExtractProperties
// reads them, written into the parts (not only computed at read time).
func TestClickHouseEventProperties(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("integration test: needs ClickHouse (scripts/services up)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	addr, name := scratchClickHouse(t)
	migrateBefore(t, ctx, addr, name, "00046")
	db := OpenClickHouse(addr, name)
	defer db.Close()
	props := []string{
		`{}`,
		`{"a":{"plan":"pro"},"plan":"free"}`,
		`{"plan":"pro","price":12.5,"gift":true,"coupon":null,"n":"12"}`,
		`{"tags":["sale",3,false,null,["x"],{"y":1}],"tags2":[]}`,
		`{"a":1,"a":"two"}`,
		`{"k\u00e9y":"\u263a","esc":"a\"b\\c{,}:"}`,
	}
	for i, p := range props {
		if _, err := db.ExecContext(ctx, `INSERT INTO events (event_id, type, user_id, ts, received_at, value, properties)
			SELECT generateUUIDv4(), 'click', ?, now(), now(), 0, ?`, fmt.Sprint(i), p); err != nil {
			t.Fatal(err)
		}
	}
	if err := ClickHouse(ctx, addr, name); err != nil {
		t.Fatal(err)
	}
	for {
		var pending uint64
		if err := db.QueryRowContext(ctx, "SELECT count() FROM system.mutations WHERE database = currentDatabase() AND table = 'events' AND is_done = 0").Scan(&pending); err != nil {
			t.Fatal(err)
		}
		if pending == 0 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("the mutation of 00046 did not finish")
		case <-time.After(100 * time.Millisecond):
		}
	}
	// The mutation wrote the columns into every active part.
	var parts, written uint64
	if err := db.QueryRowContext(ctx, `SELECT count(), countIf(name LIKE '%\\_%\\_%\\_%\\_%') FROM system.parts
		WHERE database = currentDatabase() AND table = 'events' AND active`).Scan(&parts, &written); err != nil {
		t.Fatal(err)
	}
	if parts == 0 || written != parts {
		t.Errorf("%d of %d parts of events rewritten by the mutation", written, parts)
	}
	rows, err := db.QueryContext(ctx, `SELECT user_id, prop_keys, CAST(prop_types AS Array(Int8)), prop_strings, prop_numbers FROM events ORDER BY user_id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var user string
		var keys, strs []string
		var types []int8
		var nums []float64
		if err := rows.Scan(&user, &keys, &types, &strs, &nums); err != nil {
			t.Fatal(err)
		}
		var i int
		fmt.Sscan(user, &i)
		want := ingest.ExtractProperties([]byte(props[i]))
		wantTypes := make([]int8, len(want.Types))
		for j, ty := range want.Types {
			wantTypes[j] = int8(ty)
		}
		if !slices.Equal(keys, want.Keys) || !slices.Equal(types, wantTypes) || !slices.Equal(strs, want.Strings) || !slices.Equal(nums, want.Numbers) {
			t.Errorf("%s: got %q %v %q %v, want %+v", props[i], keys, types, strs, nums, want)
		}
		n++
	}
	if err := rows.Err(); err != nil || n != len(props) {
		t.Fatalf("%d rows, %v", n, err)
	}
}

// scratchClickHouse names a database of its own for the test, dropped at its end.
func scratchClickHouse(t *testing.T) (addr, name string) {
	addr = os.Getenv("LIFT_TEST_CLICKHOUSE_ADDR")
	if addr == "" {
		addr = "127.0.0.1:9000"
	}
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	name = "lift_test_" + hex.EncodeToString(b)
	admin := OpenClickHouse(addr, "default")
	t.Cleanup(func() { admin.Close() })
	t.Cleanup(func() {
		if _, err := admin.ExecContext(context.Background(), "DROP DATABASE IF EXISTS `"+name+"`"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	return addr, name
}

// migrateBefore applies the ClickHouse migrations whose file names sort before
// version.
func migrateBefore(t *testing.T, ctx context.Context, addr, name, version string) {
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
		if e.Name() < version {
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
}
