package amqpbus_test

import (
	"context"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/liftlab/lift/ingest/amqpbus"
	"github.com/liftlab/lift/internal/testenv"
)

// Behind the broker a received_at is believed, within bounds of the consumer's clock:
// a backend's backlog keeps its receive time, an event received "in 2105" is
// dead-lettered with the reason instead of creating a partition for 2105, and a
// message timestamp from a clock gone wrong is neither a receive time nor a negative
// lag.
func TestConsumerBoundsReceiveTimes(t *testing.T) {
	t.Parallel()
	url := testenv.AMQPURL(t)
	addr, db := testenv.ClickHouse(t)
	startPublisher(t, url) // declares the topology
	m := startConsumer(t, url, addr, db)
	ch := openCH(t, addr, db)
	pch := confirmChannel(t, url)

	now := time.Now().UTC().Truncate(time.Second)
	at := func(d time.Duration) string { return now.Add(d).Format(time.RFC3339) }
	future := time.Date(2105, 6, 1, 0, 0, 0, 0, time.UTC)
	// The stamped message first: it starts the batch whose lag is measured.
	messages := []amqp.Publishing{
		{Body: []byte(`{"type":"click","user_id":"stamped"}`), Timestamp: future},
		{Body: []byte(`{"type":"click","user_id":"backlog","timestamp":"` + at(-25*time.Hour) + `","received_at":"` + at(-24*time.Hour) + `"}`)},
		{Body: []byte(`{"type":"click","user_id":"future","timestamp":"2105-06-01T00:00:00Z","received_at":"2105-06-01T00:00:00Z"}`)},
	}
	for _, msg := range messages {
		msg.ContentType = "application/json"
		dc, err := pch.PublishWithDeferredConfirmWithContext(context.Background(), amqpbus.Exchange, "click", false, false, msg)
		if err != nil {
			t.Fatal(err)
		}
		if !dc.Wait() {
			t.Fatal("publish nacked")
		}
	}
	testenv.Eventually(t, 30*time.Second, "the valid events stored and the other dead-lettered", func() bool {
		return queryInt(t, ch, "SELECT count() FROM events FINAL") == 2 && testenv.QueueDepth(t, url, amqpbus.DeadQueue) == 1
	})
	after := time.Now().UTC()

	rows, err := ch.Query("SELECT user_id, received_at FROM events FINAL ORDER BY user_id")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]time.Time{}
	for rows.Next() {
		var user string
		var received time.Time
		if err := rows.Scan(&user, &received); err != nil {
			t.Fatal(err)
		}
		got[user] = received.UTC()
	}
	rows.Close()
	if !got["backlog"].Equal(now.Add(-24 * time.Hour)) {
		t.Errorf("backlog received_at %v, want its own %v", got["backlog"], now.Add(-24*time.Hour))
	}
	if r := got["stamped"]; r.Before(now) || r.After(after) {
		t.Errorf("stamped received_at %v, want the consumer's clock (%v–%v), not the message's %v", r, now, after, future)
	}
	msg, ok, err := pch.Get(amqpbus.DeadQueue, true)
	if err != nil || !ok {
		t.Fatalf("no dead letter: %v", err)
	}
	if reason, _ := msg.Headers[amqpbus.ReasonHeader].(string); !strings.HasPrefix(reason, "received_at: is more than 5 minutes after the server's clock") {
		t.Errorf("dead letter reason %q, want received_at's bound", reason)
	}
	var lag dto.Metric
	if err := m.Lag.Write(&lag); err != nil {
		t.Fatal(err)
	}
	if h := lag.GetHistogram(); h.GetSampleCount() == 0 || h.GetSampleSum() < 0 {
		t.Errorf("consumer lag: %d samples summing to %v s, want some, none negative", h.GetSampleCount(), h.GetSampleSum())
	}
}
