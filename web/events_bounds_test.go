package web_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/liftlab/lift/ingest"
	"github.com/liftlab/lift/ingest/amqpbus"
	"github.com/liftlab/lift/ingest/chsink"
	"github.com/liftlab/lift/internal/testenv"
	"github.com/liftlab/lift/migrations"
)

// A client key cannot choose the time lift measures against, on the real pipeline
// (collector → RabbitMQ → consumer → ClickHouse): a received_at is refused, so a batch
// dated 2105 (which created a partition for 2105 and moved every watermark) and one
// dated a month back with a matching received_at (which slipped past the age limit)
// are rejected, as are values out of range; the honest event of the same batch is
// stored with the collector's receive time, and nothing beyond the clock is stored.
func TestCollectorTimeBoundsEndToEnd(t *testing.T) {
	t.Parallel()
	url := testenv.AMQPURL(t)
	addr, db := testenv.ClickHouse(t)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	m := ingest.NewMetrics(prometheus.NewRegistry())
	pub := amqpbus.NewPublisher(url, quiet, m)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	wg.Go(func() { pub.Run(ctx) })
	sink, err := chsink.Open(addr, db)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sink.Close() })
	consumer := &amqpbus.Consumer{URL: url, Sink: sink, Log: quiet, Metrics: m, BatchWait: 100 * time.Millisecond}
	wg.Go(func() { consumer.Run(ctx) })
	if err := pub.WaitConnected(ctxTimeout(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(newEventsHandler(t, pub, &evExposures{}))
	defer srv.Close()
	postEvents := func(body string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/events", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+evClientKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}

	before := time.Now().UTC().Truncate(time.Second)
	hourAgo := before.Add(-time.Hour).Format(time.RFC3339)
	monthAgo := before.Add(-30 * 24 * time.Hour).Format(time.RFC3339)
	const future = "2105-06-01T00:00:00Z"
	// All clicks: one type, one message, one insert.
	status, out := postEvents(`{"events":[
		{"type":"click","user_id":"honest","timestamp":"` + hourAgo + `"},
		{"type":"click","user_id":"mallory","timestamp":"` + future + `","received_at":"` + future + `"},
		{"type":"click","user_id":"mallory","timestamp":"` + future + `"},
		{"type":"click","user_id":"mallory","timestamp":"` + monthAgo + `","received_at":"` + monthAgo + `"},
		{"type":"click","user_id":"mallory","value":3e15}]}`)
	after := time.Now().UTC()
	if status != http.StatusAccepted || out["accepted"] != 1.0 {
		t.Fatalf("status %d, %v; want 202 with one event accepted", status, out)
	}
	want := map[float64]string{1: "received_at:", 2: "timestamp:", 3: "received_at:", 4: "value:"}
	rejected, _ := out["rejected"].([]any)
	if len(rejected) != len(want) {
		t.Fatalf("rejected %v, want %d rejections", rejected, len(want))
	}
	for _, r := range rejected {
		r := r.(map[string]any)
		if msg, _ := r["error"].(string); !strings.HasPrefix(msg, want[r["index"].(float64)]) {
			t.Errorf("rejection %v, want it to name %s", r, want[r["index"].(float64)])
		}
	}
	// Every event refused: 400 with the list.
	status, out = postEvents(`{"events":[{"type":"click","user_id":"mallory","timestamp":"` + future + `","received_at":"` + future + `"}]}`)
	if status != http.StatusBadRequest || len(out["rejected"].([]any)) != 1 {
		t.Fatalf("status %d, %v; want 400 with the rejection", status, out)
	}

	ch := migrations.OpenClickHouse(addr, db)
	defer ch.Close()
	var (
		n        uint64
		received time.Time
	)
	testenv.Poll(30*time.Second, func() bool {
		if err := ch.QueryRow(`SELECT count(), max(received_at) FROM events FINAL`).Scan(&n, &received); err != nil {
			t.Fatal(err)
		}
		return n > 0
	})
	if n != 1 {
		t.Fatalf("%d events stored, want the honest one only", n)
	}
	if received.Before(before) || received.After(after) {
		t.Errorf("received_at %v, want the collector's clock, between %v and %v", received, before, after)
	}
	var partitions []string
	rows, err := ch.Query(`SELECT DISTINCT toString(toYYYYMM(ts)) FROM events`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			t.Fatal(err)
		}
		partitions = append(partitions, p)
	}
	rows.Close()
	if len(partitions) != 1 || partitions[0] != before.Add(-time.Hour).Format("200601") {
		t.Errorf("months stored %v, want only %s", partitions, before.Add(-time.Hour).Format("200601"))
	}
}
