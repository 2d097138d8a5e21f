package chsink_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/liftlab/lift/ingest"
	"github.com/liftlab/lift/ingest/chsink"
	"github.com/liftlab/lift/internal/testenv"
	"github.com/liftlab/lift/migrations"
)

// TestPropertyColumns stores properties through the sink, which extracts the
// top-level properties in Go, and through a plain INSERT that leaves the columns to
// their DEFAULT expressions (as every row stored before migration 00046 got them):
// both must give what ingest.ExtractProperties says.
func TestPropertyColumns(t *testing.T) {
	t.Parallel()
	addr, db := testenv.ClickHouse(t)
	sink, err := chsink.Open(addr, db)
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	// Where the DEFAULT expressions read the JSON text differently (migration 00046
	// says how) the case is left out of the DEFAULT comparison only.
	cases := []struct {
		props     string
		sqlDiffer bool
	}{
		{`{}`, false},
		{`{"a":{"path":"x"},"path":"y"}`, false},
		{`{"path":"y","a":{"path":"x","b":[1,{"path":"z"}]}}`, false},
		{`{"plan":"pro","price":12.5,"gift":true,"no":false,"coupon":null,"n":"12","neg":-3}`, false},
		{`{"tags":["a","b",3,true,null,["c"],{"d":1}],"empty":[],"obj":{}}`, false},
		{`{"a":1,"a":"two"}`, false},
		{`{"tags":["x"],"tags":[2]}`, false},
		{`{"tags":["x"],"other":1,"tags":"plain"}`, false},
		{`{"k\u00e9y":"\u263a","esc":"a\"b\\c\/d\n{,}:[]","emoji":"\ud83d\ude00","café":"crème"}`, false},
		{`{"n1":-0,"n2":1e5,"n3":1.5E-3,"n4":0.1,"n5":12345.678,"n6":1e-7}`, false},
		{`{"lone":"\ud800x"}`, true},
		{`{"long":123456789.123456789}`, true},
		{`{"big":1e400}`, true},
	}
	at := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	var batch []ingest.Event
	conn := migrations.OpenClickHouse(addr, db)
	defer conn.Close()
	for i, c := range cases {
		batch = append(batch, ingest.Event{ID: ingest.NewID(), Type: ingest.TypeClick, UserID: fmt.Sprintf("go-%02d", i),
			Timestamp: at, ReceivedAt: at, Properties: []byte(c.props)})
		if _, err := conn.Exec(`INSERT INTO events (event_id, type, user_id, ts, received_at, value, properties)
			SELECT generateUUIDv4(), 'click', ?, now(), now(), 0, ?`, fmt.Sprintf("sql-%02d", i), c.props); err != nil {
			t.Fatal(err)
		}
	}
	if err := sink.Insert(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	rows, err := conn.Query(`SELECT user_id, prop_keys, CAST(prop_types AS Array(Int8)), prop_strings, prop_numbers FROM events ORDER BY user_id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var user string
		var got ingest.PropertyColumns
		var types []int8
		if err := rows.Scan(&user, &got.Keys, &types, &got.Strings, &got.Numbers); err != nil {
			t.Fatal(err)
		}
		for _, ty := range types {
			got.Types = append(got.Types, ingest.PropertyType(ty))
		}
		how, num, _ := strings.Cut(user, "-")
		i, err := strconv.Atoi(num)
		if err != nil {
			t.Fatal(user, err)
		}
		if how == "sql" && cases[i].sqlDiffer {
			continue
		}
		n++
		want := ingest.ExtractProperties([]byte(cases[i].props))
		if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b []string) bool { return len(a) == len(b) && (len(a) == 0 || cmp.Equal(a, b)) }),
			cmp.Comparer(func(a, b []float64) bool { return len(a) == len(b) && (len(a) == 0 || cmp.Equal(a, b)) }),
			cmp.Comparer(func(a, b []ingest.PropertyType) bool { return len(a) == len(b) && (len(a) == 0 || cmp.Equal(a, b)) })); diff != "" {
			t.Errorf("%s stored %s (-ExtractProperties +stored):\n%s", how, cases[i].props, diff)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if want := 2*len(cases) - 3; n != want {
		t.Fatalf("compared %d rows, want %d", n, want)
	}
}
