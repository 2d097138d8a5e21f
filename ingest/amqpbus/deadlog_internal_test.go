package amqpbus

import (
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

func TestDeadLetterOf(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	published := now.Add(-time.Minute)
	died := now.Add(-10 * time.Second)
	for _, tc := range []struct {
		name   string
		d      amqp.Delivery
		reason string
		at     time.Time
	}{
		{"consumer", amqp.Delivery{Timestamp: published, Headers: amqp.Table{ReasonHeader: "type: unknown event type"}}, "type: unknown event type", published},
		{"broker", amqp.Delivery{Timestamp: published, Headers: amqp.Table{"x-death": []any{amqp.Table{"reason": "delivery_limit", "queue": IngestQueue, "time": died}}}},
			"broker: delivery_limit from lift.ingest", died},
		{"neither", amqp.Delivery{}, "unknown (no x-lift-reason or x-death header)", now},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := deadLetterOf(tc.d, now)
			if got.Reason != tc.reason || !got.At.Equal(tc.at) {
				t.Errorf("got reason %q at %v, want %q at %v", got.Reason, got.At, tc.reason, tc.at)
			}
		})
	}
}
