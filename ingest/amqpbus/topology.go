// Package amqpbus is lift's RabbitMQ adapter: the topology, the confirmed publisher
// behind the collector and the exposure log, and the ingest consumer that batches
// events into a Sink.
package amqpbus

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Topology names (docs/storage.md, "RabbitMQ topology").
const (
	Exchange      = "lift.events" // topic; routing key = event type
	IngestQueue   = "lift.ingest"
	SegmentsQueue = "lift.segments"
	DeadExchange  = "lift.dlx"
	DeadQueue     = "lift.dead"
	// DeadLogQueue receives a copy of every dead letter for DeadLetterLog, which
	// records them for the dashboard, so lift.dead itself is left to operators.
	DeadLogQueue = "lift.dead.log"
	// ReasonHeader carries why a consumer dead-lettered an event. Messages the broker
	// dead-letters itself (delivery limit) carry the reason in x-death instead.
	ReasonHeader = "x-lift-reason"
	// SourceHeader carries the ingest.Source of the collector's messages ("client"
	// or "server": the kind of key that sent them). A message without it was
	// published by a backend (ingest.SourceAMQP). Clients cannot set AMQP headers.
	SourceHeader = "x-lift-source"
	// DeliveryLimit dead-letters a message delivered this many times without an ack:
	// a poison message that crashes consumers. Outages do not count towards it,
	// because consumers hold their deliveries and retry instead of requeueing.
	DeliveryLimit = 20
	// deadLogMaxLength bounds lift.dead.log while its consumer is down; lift.dead
	// keeps every message regardless.
	deadLogMaxLength = 100_000
)

// SegmentsStreamArgs declare lift.segments, and the segment engine's shard streams, as
// RabbitMQ streams: an append-only log that consumers read from an offset (or a
// time) of their own, which is how the segment engine resumes exactly after its
// checkpoint. Retention bounds the disk a stopped engine can use: a day, at most
// 5 GB, dropped in 100 MB segments; the engine rebuilds older state from ClickHouse.
var SegmentsStreamArgs = amqp.Table{
	amqp.QueueTypeArg: amqp.QueueTypeStream, amqp.StreamMaxAgeArg: "1D",
	amqp.StreamMaxLenBytesArg: int64(5 << 30), amqp.StreamMaxSegmentSizeBytesArg: int64(100 << 20),
}

// Declare declares the exchanges, queues and bindings. It is idempotent, so every
// process runs it at start-up; it fails if a queue exists with other arguments.
func Declare(ch *amqp.Channel) error {
	for _, x := range []string{Exchange, DeadExchange} {
		if err := ch.ExchangeDeclare(x, amqp.ExchangeTopic, true, false, false, false, nil); err != nil {
			return fmt.Errorf("amqpbus: declare exchange %s: %w", x, err)
		}
	}
	queues := []struct {
		name, exchange string
		args           amqp.Table
	}{
		// Quorum queues count deliveries, which is what enforces the delivery limit.
		{IngestQueue, Exchange, amqp.Table{
			amqp.QueueTypeArg: amqp.QueueTypeQuorum, "x-delivery-limit": DeliveryLimit,
			"x-dead-letter-exchange": DeadExchange,
		}},
		{SegmentsQueue, Exchange, SegmentsStreamArgs},
		{DeadQueue, DeadExchange, amqp.Table{amqp.QueueTypeArg: amqp.QueueTypeQuorum}},
		// One active consumer at a time records the copies, in order.
		{DeadLogQueue, DeadExchange, amqp.Table{
			amqp.QueueTypeArg: amqp.QueueTypeQuorum, amqp.SingleActiveConsumerArg: true,
			"x-max-length": deadLogMaxLength, "x-overflow": "drop-head",
		}},
	}
	for _, q := range queues {
		if _, err := ch.QueueDeclare(q.name, true, false, false, false, q.args); err != nil {
			return fmt.Errorf("amqpbus: declare queue %s: %w", q.name, err)
		}
		if err := ch.QueueBind(q.name, "#", q.exchange, false, nil); err != nil {
			return fmt.Errorf("amqpbus: bind queue %s: %w", q.name, err)
		}
	}
	return nil
}

// Dial connects to the broker with lift's settings: 5 s heartbeats, so a dead
// connection is noticed quickly, and a 5 s connect timeout.
func Dial(url string) (*amqp.Connection, error) {
	return amqp.DialConfig(url, amqp.Config{
		Heartbeat: 5 * time.Second,
		Locale:    "en_US",
		Dial:      amqp.DefaultDial(5 * time.Second),
	})
}

// keepUp runs session until ctx ends, starting it again after each end with a
// backoff that starts over once a session lasted a minute; restarted, when not nil,
// is called before each new start, and what says in the log what stopped.
func keepUp(ctx context.Context, log *slog.Logger, what string, session func(context.Context) error, restarted func()) {
	delay := 100 * time.Millisecond
	for ctx.Err() == nil {
		start := time.Now()
		err := session(ctx)
		if ctx.Err() != nil {
			return
		}
		if time.Since(start) > time.Minute {
			delay = 100 * time.Millisecond
		}
		if restarted != nil {
			restarted()
		}
		log.Warn(what+"; reconnecting", "err", err, "backoff", delay)
		select {
		case <-ctx.Done():
		case <-time.After(delay):
		}
		delay = backoff(delay)
	}
}

// backoff doubles a retry delay up to a ceiling.
func backoff(d time.Duration) time.Duration {
	return min(2*d, 5*time.Second)
}
