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

// BenchmarkInsert: one batch of 10,000 page views (as the collector makes them) into
// events, with its materialized views; ns/op is per batch.
func BenchmarkInsert(b *testing.B) {
	for _, rows := range []int{10_000, 50_000} {
		b.Run(fmt.Sprint(rows), func(b *testing.B) {
			addr, db := testenv.ClickHouse(b)
			sink, err := chsink.Open(addr, db)
			if err != nil {
				b.Fatal(err)
			}
			defer sink.Close()
			now := time.Now().UTC()
			batch := make([]ingest.Event, rows)
			for b.Loop() {
				for i := range batch {
					batch[i] = ingest.Event{ID: ingest.NewID(), Type: ingest.TypePageView, UserID: fmt.Sprintf("user-%d", i),
						Timestamp: now, ReceivedAt: now, Properties: []byte(`{"path":"/products/1234","ref":"bench"}`)}
				}
				if err := sink.Insert(context.Background(), batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(rows*b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}
