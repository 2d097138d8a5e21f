package chstore_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/liftlab/lift/ingest"
	"github.com/liftlab/lift/ingest/chsink"
	"github.com/liftlab/lift/ingest/gdpr"
	"github.com/liftlab/lift/ingest/gdpr/chstore"
	"github.com/liftlab/lift/internal/testenv"
	"github.com/liftlab/lift/migrations"
)

type policies struct {
	months map[string]int
	drops  []gdpr.Drop
}

func (p *policies) Policies(context.Context) (map[string]int, error) { return p.months, nil }
func (p *policies) SetPolicy(_ context.Context, _, table string, months int) error {
	p.months[table] = months
	return nil
}
func (p *policies) RecordDrop(_ context.Context, d gdpr.Drop) error {
	p.drops = append(p.drops, d)
	return nil
}
func (p *policies) Drops(context.Context, int) ([]gdpr.Drop, error) { return p.drops, nil }

// Retention on ClickHouse 18.16: partitions whose newest row is past the table's
// retention are dropped whole, from raw tables and aggregates alike; newer ones and
// tables not partitioned by time stay. On the cluster the events of alice (shard 1)
// and u (shard 2) put every month's partition of events on both shards: retention
// reports and records each once, under events, and drops it from both.
func TestRetention(t *testing.T) {
	t.Parallel()
	onBoth(t, testRetention)
}

func testRetention(t *testing.T, st storage) {
	sink, err := chsink.Open(st.addr, st.db)
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	now := time.Date(2026, 6, 15, 12, 0, 0, 0, time.UTC)
	var batch []ingest.Event
	for _, at := range []time.Time{now.AddDate(-2, 0, 0), now.AddDate(0, -14, 0), now.AddDate(0, -6, 0), now} {
		batch = append(batch,
			ingest.Event{ID: ingest.NewID(), Type: ingest.TypeClick, UserID: "u", Timestamp: at, ReceivedAt: at},
			ingest.Event{ID: ingest.NewID(), Type: ingest.TypeClick, UserID: "alice", Timestamp: at, ReceivedAt: at},
			ingest.Event{ID: ingest.NewID(), Type: ingest.TypeExposure, UserID: "u" + at.Format("0601"), Timestamp: at, ReceivedAt: at,
				Exposure: &ingest.Exposure{Experiment: "hero", Variant: "a", AssignmentProbability: 1}})
	}
	ctx := context.Background()
	if err := sink.Insert(ctx, batch); err != nil {
		t.Fatal(err)
	}
	st.sync(t)
	const old = "SELECT count() FROM %s WHERE ts < '2025-06-15 12:00:00'"
	for r, n := range st.countEach(t, old, "events") {
		if want := map[int]uint64{0: 4, 1: 2, 2: 2}[r.shard]; n != want {
			t.Fatalf("%+v holds %d old events, want %d", r, n, want)
		}
	}
	s, err := chstore.Open(st.addr, st.db)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	p := &policies{months: map[string]int{"exposures": 3}}
	r := &gdpr.Retention{Partitions: s, Policies: p, DefaultMonths: 13, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Now: func() time.Time { return now }}

	o, err := r.Overview(ctx)
	if err != nil {
		t.Fatal(err)
	}
	byTable := map[string]gdpr.TableRetention{}
	for _, tr := range o.Tables {
		byTable[tr.Table] = tr
	}
	if ev := byTable["events"]; ev.Months != 13 || !ev.Default || ev.Method != "partitions" || ev.Partitions != 4 || ev.Rows != 8 ||
		!ev.Oldest.Before(now.AddDate(-1, -11, 0)) {
		t.Errorf("events: %+v", ev)
	}
	if x := byTable["exposures"]; x.Months != 3 || x.Default {
		t.Errorf("exposures: %+v", x)
	}
	if fe := byTable["first_exposures"]; fe.Method != "rows" || fe.TimeColumn != "finalizeAggregation(`first_ts`)" || fe.Rows != 4 {
		t.Errorf("first_exposures (not partitioned by time): %+v", fe)
	}
	if _, ok := byTable[migrations.VersionTable]; ok {
		t.Error("the migrations table is subject to retention")
	}
	for table := range byTable {
		if strings.HasSuffix(table, "_local") {
			t.Errorf("retention reports the cluster's local table %s", table)
		}
	}

	drops, err := r.Enforce(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// events: 13 months keep the 6-month-old and current rows; exposures: 3 months
	// keep the current one; daily aggregates follow their day; first_exposures
	// (13 months, by first_ts) loses its rows through a mutation.
	deadline := time.Now().Add(time.Minute)
	for q, want := range map[string]uint64{
		"SELECT count() FROM events":                                            4,
		"SELECT count() FROM exposures":                                         1,
		"SELECT count() FROM (SELECT day FROM daily_events GROUP BY day, type)": 2,
		"SELECT count() FROM first_exposures":                                   2,
	} {
		testenv.Poll(time.Until(deadline), func() bool { return st.count(t, q) == want })
		if got := st.count(t, q); got != want {
			t.Errorf("%s = %d, want %d", q, got, want)
		}
	}
	if len(drops) != len(p.drops) || len(drops) < 6 {
		t.Errorf("drops %+v, recorded %+v", drops, p.drops)
	}
	var eventDrops int
	for _, d := range p.drops {
		if d.Table == "events" {
			eventDrops++
			if d.Rows != 2 {
				t.Errorf("drop %+v: want the 2 rows of both shards", d)
			}
		}
	}
	if eventDrops != 2 {
		t.Errorf("recorded %d drops of events, want 2: %+v", eventDrops, p.drops)
	}
	// Every replica lost the old partitions and kept the others.
	st.sync(t)
	for r, n := range st.countEach(t, old, "events") {
		if n != 0 {
			t.Errorf("%+v still holds %d old events", r, n)
		}
	}
	for r, n := range st.countEach(t, "SELECT count() FROM %s", "events") {
		if want := map[int]uint64{0: 4, 1: 2, 2: 2}[r.shard]; n != want {
			t.Errorf("%+v holds %d events, want %d", r, n, want)
		}
	}
	// A second run finds nothing more to drop.
	if again, err := r.Enforce(ctx); err != nil || len(again) != 0 {
		t.Errorf("second run dropped %+v (%v)", again, err)
	}
}
