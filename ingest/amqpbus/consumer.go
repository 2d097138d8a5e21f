package amqpbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/liftlab/lift/ingest"
)

// drainTimeout bounds the last flush of a consumer that is shutting down.
const drainTimeout = 10 * time.Second

// Consumer moves events from lift.ingest into a Sink: it batches deliveries by size
// and time, inserts the batch, dead-letters the invalid events with their reason, and
// only then acks everything up to the batch's last delivery (one multiple ack). While
// the sink fails it holds its deliveries and retries with backoff, so an outage
// neither requeues nor dead-letters anything and the backlog waits in the queue.
// Several consumers may run against the same queue.
type Consumer struct {
	URL     string
	Queue   string // default lift.ingest
	Sink    ingest.Sink
	Types   ingest.Types // custom event types; nil: built-in types only
	Log     *slog.Logger
	Metrics *ingest.Metrics
	// Privacy protects events that backends published raw and leaves out those
	// without analytics consent; nil: all stored as published.
	Privacy *ingest.Privacy

	BatchRows int           // insert once this many rows are buffered (default 10,000)
	BatchWait time.Duration // or once the oldest buffered delivery is this old (default 1 s)
	Prefetch  int           // unacked deliveries held at most (default 1,000 messages)
}

func (c *Consumer) defaults() {
	if c.Queue == "" {
		c.Queue = IngestQueue
	}
	if c.BatchRows <= 0 {
		c.BatchRows = 10_000
	}
	if c.BatchWait <= 0 {
		c.BatchWait = time.Second
	}
	if c.Prefetch <= 0 {
		c.Prefetch = 1000
	}
}

// Run consumes until ctx ends, reconnecting with backoff. Deliveries not yet acked
// when it returns are redelivered by the broker; storage dedups them.
func (c *Consumer) Run(ctx context.Context) {
	c.defaults()
	delay := 100 * time.Millisecond
	for ctx.Err() == nil {
		start := time.Now()
		err := c.session(ctx)
		if ctx.Err() != nil {
			return
		}
		if time.Since(start) > time.Minute {
			delay = 100 * time.Millisecond
		}
		c.Metrics.ConsumerRestarts.Inc()
		c.Log.Warn("ingest consumer stopped; reconnecting", "err", err, "backoff", delay)
		select {
		case <-ctx.Done():
		case <-time.After(delay):
		}
		delay = backoff(delay)
	}
}

type session struct {
	*Consumer
	ch     *amqp.Channel
	dead   *amqp.Channel // on its own connection, see Publisher
	closed chan *amqp.Error

	events  []ingest.Event
	invalid []deadLetter
	last    uint64    // delivery tag of the newest delivery in the batch
	held    int       // deliveries in the batch
	oldest  time.Time // when the collector received the batch's first delivery
}

type deadLetter struct {
	routingKey string
	ingest.Invalid
}

func (c *Consumer) session(ctx context.Context) error {
	conn, err := Dial(c.URL)
	if err != nil {
		return err
	}
	defer conn.Close()
	deadConn, err := Dial(c.URL)
	if err != nil {
		return err
	}
	defer deadConn.Close()

	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	if err := Declare(ch); err != nil {
		return err
	}
	if err := ch.Qos(c.Prefetch, 0, false); err != nil {
		return err
	}
	dead, err := deadConn.Channel()
	if err != nil {
		return err
	}
	if err := dead.Confirm(false); err != nil {
		return err
	}
	deliveries, err := ch.Consume(c.Queue, "", false, false, false, false, nil)
	if err != nil {
		return err
	}
	s := &session{Consumer: c, ch: ch, dead: dead, closed: conn.NotifyClose(make(chan *amqp.Error, 1))}
	go c.sampleDepth(ctx, conn)
	c.Log.Info("ingest consumer started", "queue", c.Queue)

	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case <-ctx.Done():
			// Shutting down: store and ack what is held rather than leave it to be
			// redelivered, within a bound in case the sink is down.
			drainCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), drainTimeout)
			defer cancel()
			return s.flush(drainCtx)
		case d, ok := <-deliveries:
			if !ok {
				return errors.New("delivery channel closed")
			}
			if s.held == 0 {
				timer.Reset(c.BatchWait)
			}
			s.add(d)
			if len(s.events) < c.BatchRows && s.held < c.Prefetch {
				continue
			}
		case <-timer.C:
		}
		timer.Stop()
		if err := s.flush(ctx); err != nil {
			return err
		}
	}
}

func (s *session) add(d amqp.Delivery) {
	received := d.Timestamp
	if received.IsZero() {
		received = time.Now()
	}
	events, invalid := ingest.ParseMessage(d.Body, received, s.Types)
	s.events = append(s.events, s.Privacy.Consumed(events, ingest.ForAnalytics)...)
	for _, inv := range invalid {
		s.invalid = append(s.invalid, deadLetter{routingKey: d.RoutingKey, Invalid: inv})
	}
	s.last = d.DeliveryTag
	if s.held == 0 {
		s.oldest = received
	}
	s.held++
}

// flush stores the batch, dead-letters its invalid events and acks it. It returns an
// error only when the batch can no longer be acked (connection lost) or ctx ended;
// the deliveries are then redelivered.
func (s *session) flush(ctx context.Context) error {
	if s.held == 0 {
		return nil
	}
	s.events = ingest.Dedup(s.events)
	if len(s.events) > 0 {
		start := time.Now()
		if err := s.retry(ctx, "insert into ClickHouse", func(ctx context.Context) error {
			return s.Sink.Insert(ctx, s.events)
		}); err != nil {
			return err
		}
		s.Metrics.InsertLatency.Observe(time.Since(start).Seconds())
		s.Metrics.Lag.Observe(time.Since(s.oldest).Seconds())
		s.Metrics.BatchRows.Observe(float64(len(s.events)))
		s.Metrics.Inserted.Add(float64(len(s.events)))
	}
	if len(s.invalid) > 0 {
		if err := s.retry(ctx, "dead-letter invalid events", s.deadLetter); err != nil {
			return err
		}
		s.Metrics.DeadLettered.Add(float64(len(s.invalid)))
	}
	if err := s.ch.Ack(s.last, true); err != nil {
		return fmt.Errorf("ack: %w", err)
	}
	clear(s.events) // drop references to properties
	s.events, s.invalid, s.held = s.events[:0], s.invalid[:0], 0
	return nil
}

// retry runs op until it succeeds, with backoff. It gives up only when ctx ends or
// the consuming connection is lost, since then the deliveries cannot be acked anyway.
func (s *session) retry(ctx context.Context, what string, op func(context.Context) error) error {
	delay := 100 * time.Millisecond
	for {
		opCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := op(opCtx)
		cancel()
		if err == nil {
			return nil
		}
		s.Log.Warn("ingest consumer: "+what+" failed; holding the batch and retrying",
			"err", err, "rows", len(s.events), "backoff", delay)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-s.closed:
			return fmt.Errorf("connection closed while retrying: %w", err)
		case <-time.After(delay):
		}
		delay = backoff(delay)
	}
}

// deadLetter publishes every invalid event to lift.dlx with its reason and waits for
// the confirms.
func (s *session) deadLetter(ctx context.Context) error {
	confirms := make([]*amqp.DeferredConfirmation, 0, len(s.invalid))
	for _, inv := range s.invalid {
		dc, err := s.dead.PublishWithDeferredConfirmWithContext(ctx, DeadExchange, inv.routingKey, false, false, amqp.Publishing{
			ContentType:  "application/json",
			DeliveryMode: amqp.Persistent,
			Timestamp:    time.Now(),
			Headers:      amqp.Table{ReasonHeader: inv.Reason},
			Body:         inv.Raw,
		})
		if err != nil {
			return err
		}
		confirms = append(confirms, dc)
	}
	for _, dc := range confirms {
		acked, err := dc.WaitContext(ctx)
		if err != nil {
			return err
		}
		if !acked {
			return errors.New("broker nacked a dead letter")
		}
	}
	return nil
}

// sampleDepth publishes the queue's ready-message count as a gauge, on a channel of
// its own so a failed passive declare cannot close the consuming one.
func (c *Consumer) sampleDepth(ctx context.Context, conn *amqp.Connection) {
	ch, err := conn.Channel()
	if err != nil {
		return
	}
	defer ch.Close()
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	for {
		q, err := ch.QueueDeclarePassive(c.Queue, true, false, false, false, nil)
		if err != nil {
			return
		}
		c.Metrics.QueueDepth.WithLabelValues(c.Queue).Set(float64(q.Messages))
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
