// Package amqpclient sends lift events straight to RabbitMQ (exchange lift.events,
// routing key = event type) with publisher confirms, for backends that would rather
// not depend on lift's HTTP collector being up. It is a client.Sink, so a
// client.Batcher can batch into it. The ingest consumers validate every message as
// they would an HTTP event; invalid ones go to the dead-letter queue lift.dead.
package amqpclient

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/liftlab/lift/ingest"
	"github.com/liftlab/lift/ingest/amqpbus"
	"github.com/liftlab/lift/internal/derrors"
	"github.com/liftlab/lift/web/client"
)

// ErrUnavailable is what Send's error wraps while the broker is unreachable or does
// not confirm: nothing was stored, and the same events may be sent again. It is
// lift's own error kind, named here because a client cannot import lift's internals.
var ErrUnavailable = derrors.ErrUnavailable

// Publisher publishes events to lift's exchange, reconnecting by itself.
type Publisher struct {
	pub  *amqpbus.Publisher
	stop context.CancelFunc
	done chan struct{}
}

// Dial connects to the broker at url (declaring lift's topology if missing) and
// waits for the first connection until ctx ends. Close releases it.
func Dial(ctx context.Context, url string, log *slog.Logger) (*Publisher, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	pub := amqpbus.NewPublisher(url, log, ingest.NewMetrics(prometheus.NewRegistry()))
	runCtx, stop := context.WithCancel(context.Background())
	p := &Publisher{pub: pub, stop: stop, done: make(chan struct{})}
	go func() { pub.Run(runCtx); close(p.done) }()
	if err := pub.WaitConnected(ctx); err != nil {
		p.Close()
		return nil, fmt.Errorf("amqpclient: connect: %w", err)
	}
	return p, nil
}

// Send publishes events and returns nil once the broker confirmed them. Events
// without an ID or timestamp get them (client.Prepare), so a retry is idempotent.
// It fails, wrapping ErrUnavailable, while the broker is unreachable.
func (p *Publisher) Send(ctx context.Context, events []client.Event) error {
	client.Prepare(events)
	now := time.Now().UTC()
	out := make([]ingest.Event, len(events))
	for i, e := range events {
		id, err := uuid.Parse(e.ID)
		if err != nil {
			return fmt.Errorf("amqpclient: event %d: event_id %q is not a UUID", i, e.ID)
		}
		var props json.RawMessage
		if e.Properties != nil {
			if props, err = json.Marshal(e.Properties); err != nil {
				return fmt.Errorf("amqpclient: event %d: properties: %w", i, err)
			}
		}
		out[i] = ingest.Event{ID: id, Type: e.Type, UserID: e.UserID, Timestamp: e.Timestamp.UTC(),
			ReceivedAt: now, Value: e.Value, Properties: props}
	}
	if err := p.pub.Publish(ctx, out); err != nil {
		return fmt.Errorf("amqpclient: %w", err)
	}
	return nil
}

// Close disconnects.
func (p *Publisher) Close() {
	p.stop()
	<-p.done
}
