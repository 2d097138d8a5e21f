package chsink_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/liftlab/lift/ingest"
	"github.com/liftlab/lift/ingest/chsink"
	"github.com/liftlab/lift/internal/testenv"
	"github.com/liftlab/lift/migrations"
)

// Every column of events and exposures holds what the event carried, duplicates in
// a batch are stored once, and an event without properties stores an empty object.
func TestInsertStoresEveryColumn(t *testing.T) {
	t.Parallel()
	addr, db := testenv.ClickHouse(t)
	sink, err := chsink.Open(addr, db)
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	at := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	purchase := ingest.Event{ID: ingest.NewID(), Type: ingest.TypePurchase, UserID: "josé", Timestamp: at.Add(-time.Minute),
		ReceivedAt: at, Value: 12.5, Properties: []byte(`{"sku":"a"}`)}
	view := ingest.Event{ID: ingest.NewID(), Type: ingest.TypePageView, UserID: "u2", Timestamp: at, ReceivedAt: at}
	exposure := ingest.Event{ID: ingest.NewID(), Type: ingest.TypeExposure, UserID: "u3", Timestamp: at, ReceivedAt: at,
		Exposure: &ingest.Exposure{Experiment: "hero", Variant: "bold", Segment: "new", AssignmentProbability: 0.25}}
	if err := sink.Insert(context.Background(), []ingest.Event{purchase, view, exposure, purchase}); err != nil {
		t.Fatal(err)
	}

	conn := migrations.OpenClickHouse(addr, db)
	defer conn.Close()
	type eventRow struct {
		ID           uuid.UUID
		Type, User   string
		TS, Received time.Time
		Value        float64
		Properties   string
	}
	rows, err := conn.Query(`SELECT event_id, type, user_id, ts, received_at, value, properties FROM events ORDER BY user_id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []eventRow
	for rows.Next() {
		var r eventRow
		if err := rows.Scan(&r.ID, &r.Type, &r.User, &r.TS, &r.Received, &r.Value, &r.Properties); err != nil {
			t.Fatal(err)
		}
		r.TS, r.Received = r.TS.UTC(), r.Received.UTC()
		got = append(got, r)
	}
	want := []eventRow{
		{purchase.ID, ingest.TypePurchase, "josé", at.Add(-time.Minute), at, 12.5, `{"sku":"a"}`},
		{view.ID, ingest.TypePageView, "u2", at, at, 0, "{}"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}

	var x struct {
		ID                          uuid.UUID
		TS                          time.Time
		User, Exp, Variant, Segment string
		Prob                        float64
	}
	err = conn.QueryRow(`SELECT event_id, ts, user_id, experiment, variant, segment, assignment_probability FROM exposures`).
		Scan(&x.ID, &x.TS, &x.User, &x.Exp, &x.Variant, &x.Segment, &x.Prob)
	if err != nil {
		t.Fatal(err)
	}
	if x.ID != exposure.ID || !x.TS.Equal(at) || x.User != "u3" || x.Exp != "hero" || x.Variant != "bold" || x.Segment != "new" || x.Prob != 0.25 {
		t.Errorf("exposure row %+v", x)
	}
}

// BenchmarkInsert: batches of 10,000 and 50,000 page views (as the collector makes
// them) into events, with its materialized views; ns/op is per batch, events/s the
// rate of stored events. "single" inserts into the single server; "cluster" into the
// local cluster (2 shards × 2 replicas, docs/deploy.md) through the Distributed table,
// which splits each batch by user between the shards, and its time includes waiting,
// after the last batch, until the second replica of each shard has fetched every
// batch: events/s is then the rate at which events are stored twice over, the
// sustained rate replication allows, and acked-events/s the rate of the inserts
// alone (on one server the two are the same).
func BenchmarkInsert(b *testing.B) {
	b.Run("single", func(b *testing.B) {
		addr, db := testenv.ClickHouse(b)
		benchInsert(b, addr, db, func(testing.TB) {})
	})
	b.Run("cluster", func(b *testing.B) {
		c := testenv.ClickHouseCluster(b)
		benchInsert(b, c.Addr, c.DB, c.SyncReplicas)
	})
}

func benchInsert(b *testing.B, addr, db string, settle func(testing.TB)) {
	sink, err := chsink.Open(addr, db)
	if err != nil {
		b.Fatal(err)
	}
	defer sink.Close()
	for _, rows := range []int{10_000, 50_000} {
		b.Run(fmt.Sprint(rows), func(b *testing.B) {
			now := time.Now().UTC()
			batch := make([]ingest.Event, rows)
			for range b.N {
				b.StopTimer()
				for i := range batch {
					batch[i] = ingest.Event{ID: ingest.NewID(), Type: ingest.TypePageView, UserID: fmt.Sprintf("user-%d", i),
						Timestamp: now, ReceivedAt: now, Properties: []byte(`{"path":"/products/1234","ref":"bench"}`)}
				}
				b.StartTimer()
				if err := sink.Insert(context.Background(), batch); err != nil {
					b.Fatal(err)
				}
			}
			acked := b.Elapsed()
			settle(b)
			b.ReportMetric(float64(rows*b.N)/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric(float64(rows*b.N)/acked.Seconds(), "acked-events/s")
		})
	}
}

// On a cluster the sink inserts through the Distributed tables: every row lands on
// the shard of its user and on both of its replicas, and a batch delivered again
// (a consumer that died before its ack) is dropped by the replicated tables as a
// duplicate block, or collapses under FINAL.
func TestInsertOnCluster(t *testing.T) {
	c := testenv.ClickHouseCluster(t)
	sink, err := chsink.Open(c.Addr, c.DB)
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	at := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	var batch []ingest.Event
	for i := range 1000 {
		user := fmt.Sprintf("u%d", i%300)
		batch = append(batch, ingest.Event{ID: ingest.NewID(), Type: ingest.TypePurchase, UserID: user,
			Timestamp: at, ReceivedAt: at, Value: 1, Properties: []byte(`{"sku":"a"}`)})
		if i%4 == 0 {
			batch = append(batch, ingest.Event{ID: ingest.NewID(), Type: ingest.TypeExposure, UserID: user, Timestamp: at,
				ReceivedAt: at, Exposure: &ingest.Exposure{Experiment: "hero", Variant: "bold", AssignmentProbability: 0.5}})
		}
	}
	ctx := context.Background()
	for range 2 {
		if err := sink.Insert(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	c.SyncReplicas(t)

	count := func(node, query string) uint64 {
		t.Helper()
		conn := migrations.OpenClickHouse(node, c.DB)
		defer conn.Close()
		var n uint64
		if err := conn.QueryRow(query).Scan(&n); err != nil {
			t.Fatalf("%s on %s: %v", query, node, err)
		}
		return n
	}
	for table, want := range map[string]uint64{"events": 1000, "exposures": 250} {
		if n := count(c.Addr, "SELECT count() FROM "+table+" FINAL"); n != want {
			t.Errorf("%s: %d rows after FINAL, want %d", table, n, want)
		}
		var perNode []uint64
		for _, node := range c.Nodes {
			perNode = append(perNode, count(node, "SELECT count() FROM "+table+"_local FINAL"))
		}
		if len(perNode) == 4 && (perNode[0] != perNode[1] || perNode[2] != perNode[3] || perNode[0]+perNode[2] != want || perNode[0] == 0 || perNode[2] == 0) {
			t.Errorf("%s rows per node %v: want two equal pairs, both shards used, %d in all", table, perNode, want)
		}
	}
	// The views count each user once, whichever shard it is on.
	if n := count(c.Addr, "SELECT count() FROM (SELECT user_id FROM first_exposures GROUP BY experiment, user_id)"); n != 75 {
		t.Errorf("first_exposures: %d users, want 75 (every fourth event of 300 users)", n)
	}
}
