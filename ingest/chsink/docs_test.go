package chsink_test

import (
	"context"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/liftlab/lift/experiments"
	"github.com/liftlab/lift/experiments/chstore"
	"github.com/liftlab/lift/ingest"
	"github.com/liftlab/lift/ingest/chsink"
	"github.com/liftlab/lift/internal/testenv"
	"github.com/liftlab/lift/migrations"
	"github.com/liftlab/lift/segments"
	segchsink "github.com/liftlab/lift/segments/chsink"
)

var sqlBlock = regexp.MustCompile("(?s)```sql\n(.*?)```")

// Every SQL example of docs/analytics.md runs on the test server (ClickHouse 18.16 on
// the development machines) and answers with the data the sink inserted.
func TestAnalyticsExamples(t *testing.T) {
	doc, err := os.ReadFile("../../docs/analytics.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := sqlBlock.FindAllSubmatch(doc, -1)
	if len(blocks) < 4 {
		t.Fatalf("found %d sql blocks in docs/analytics.md", len(blocks))
	}
	addr, db := testenv.ClickHouse(t)
	sink, err := chsink.Open(addr, db)
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	now := time.Now().UTC().Truncate(time.Second)
	ev := func(typ, user string, at time.Duration, value float64, props string) ingest.Event {
		e := ingest.Event{ID: ingest.NewID(), Type: typ, UserID: user, Timestamp: now.Add(at), ReceivedAt: now,
			Value: value, Properties: []byte(props)}
		if typ == ingest.TypeExposure {
			e.Exposure = &ingest.Exposure{Experiment: "hero-banner", Variant: map[string]string{"u1": "control", "u2": "bold"}[user],
				AssignmentProbability: 0.5}
		}
		return e
	}
	batch := []ingest.Event{
		ev(ingest.TypeExposure, "u1", -time.Hour, 0, `{}`),
		ev(ingest.TypeExposure, "u2", -time.Hour, 0, `{}`),
		ev(ingest.TypePageView, "u1", -50*time.Minute, 0, `{"path":"/pricing"}`),
		// What /v1/recommend showed u1, the click on it and the purchase it led to.
		ev("$recommendation", "u1", -45*time.Minute, 0, `{"recommender":"similar","strategy":"similar","recommendation_id":"r1","items":["sku-1"]}`),
		ev(ingest.TypeProductView, "u1", -40*time.Minute, 0, `{"recommendation_id":"r1","sku":"sku-1"}`),
		ev(ingest.TypeAddToCart, "u1", -30*time.Minute, 0, `{}`),
		ev(ingest.TypePurchase, "u1", -20*time.Minute, 12.5, `{"sku":"sku-1"}`),
	}
	ctx := context.Background()
	if err := sink.Insert(ctx, batch); err != nil {
		t.Fatal(err)
	}
	if err := sink.Insert(ctx, batch); err != nil { // a redelivery
		t.Fatal(err)
	}
	changes, err := segchsink.Open(addr, db)
	if err != nil {
		t.Fatal(err)
	}
	defer changes.Close()
	seg := []segments.Change{
		{Kind: segments.Enter, UserID: "u1", Segment: "high-intent", At: now.Add(-40 * time.Minute), Expiry: now.Add(-30 * time.Minute)},
		{Kind: segments.Exit, UserID: "u1", Segment: "high-intent", At: now.Add(-30 * time.Minute)},
		{Kind: segments.Enter, UserID: "u2", Segment: "high-intent", At: now.Add(-10 * time.Minute)},
	}
	for range 2 { // the second time as an engine restarted from an older checkpoint
		if err := changes.Record(ctx, seg); err != nil {
			t.Fatal(err)
		}
	}
	// Results computed once, as the results API would, fill metric_nodes.
	results, err := chstore.Open(addr, db)
	if err != nil {
		t.Fatal(err)
	}
	defer results.Close()
	if _, err := results.MetricAggregates(ctx, experiments.MetricQuery{Experiment: "hero-banner", Event: "purchase",
		Kind: "conversion", Window: experiments.DefaultWindow}, experiments.Overall); err != nil {
		t.Fatal(err)
	}
	conn := migrations.OpenClickHouse(addr, db)
	defer conn.Close()
	// A feature value as the segment engine writes it, before the docs' fixed date.
	if _, err := conn.ExecContext(ctx, `INSERT INTO feature_values (ts, ts_ms, user_id, feature, value, recorded_at)
		SELECT toDateTime('2026-05-31 10:00:00'), 0, 'u1', 'features.views_10m', '3', now()`); err != nil {
		t.Fatal(err)
	}
	for _, b := range blocks {
		rows, err := conn.QueryContext(ctx, string(b[1]))
		if err != nil {
			t.Errorf("query failed: %v\n%s", err, b[1])
			continue
		}
		n := 0
		for rows.Next() {
			n++
		}
		if err := rows.Err(); err != nil || n == 0 {
			t.Errorf("query returned %d rows, err %v\n%s", n, err, b[1])
		}
		rows.Close()
	}
	var converted uint64
	var rate float64
	var conversion string
	for _, b := range blocks {
		if strings.Contains(string(b[1]), "conversion_rate") {
			conversion = string(b[1])
			break
		}
	}
	err = conn.QueryRowContext(ctx, `SELECT converted, conversion_rate FROM (`+conversion+`) WHERE variant = 'control'`).Scan(&converted, &rate)
	if err != nil || converted != 1 || rate != 1 {
		t.Errorf("conversion of control: %d users, rate %v, err %v; want 1 and 1", converted, rate, err)
	}
	// Segment sizes: u1 entered and left, u2 is in; the re-recorded changes count once.
	for _, b := range blocks {
		if !strings.Contains(string(b[1]), "arrayCumSum") {
			continue
		}
		var entered, exited uint64
		var members int64
		err := conn.QueryRowContext(ctx, `SELECT sum(entered), sum(exited), argMax(members, day) FROM (`+string(b[1])+`)
			WHERE segment = 'high-intent'`).Scan(&entered, &exited, &members)
		if err != nil || entered != 2 || exited != 1 || members != 1 {
			t.Errorf("high-intent: %d entered, %d exited, %d members, err %v; want 2, 1, 1", entered, exited, members, err)
		}
	}
}
