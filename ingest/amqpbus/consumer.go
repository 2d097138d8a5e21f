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
//
// An outage longer than the broker's consumer_timeout (30 minutes by default) ends
// the session: the broker closes the channel and returns the held deliveries, which
// counts one delivery each towards DeliveryLimit. So that a long outage costs a
// message at most that one count, however many timeouts it lasts, a new session
// takes deliveries only once Ready says the sink can store them; meanwhile the
// backlog waits in the queue.
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
	// Ready, when set, reports whether the sink can store events now (on a
	// ClickHouse cluster: every shard has a replica that answers). A session polls
	// it before it starts consuming, every ReadyPoll (default 1 s).
	Ready     func(context.Context) error
	ReadyPoll time.Duration

	// BatchRows: insert once this many rows are buffered (default 10,000). While the
	// previous batch is still being inserted, the next one grows to at most
	// maxBatchGrowth times as many rows before the consumer stops taking deliveries.
	BatchRows int
	BatchWait time.Duration // or once the oldest buffered delivery is this old (default 1 s)
	// Prefetch bounds the unacked deliveries the broker sends (default 1,000
	// messages); with BatchRows it bounds the consumer's memory.
	Prefetch int
}

// maxBatchGrowth lets batches grow while ClickHouse is slow, since a large insert
// costs less per row than several small ones (ingest/chsink BenchmarkInsert).
const maxBatchGrowth = 4

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
	if c.ReadyPoll <= 0 {
		c.ReadyPoll = time.Second
	}
}

// Run consumes until ctx ends, reconnecting with backoff. Deliveries not yet acked
// when it returns are redelivered by the broker; storage dedups them.
func (c *Consumer) Run(ctx context.Context) {
	c.defaults()
	keepUp(ctx, c.Log, "ingest consumer stopped", c.session, c.Metrics.ConsumerRestarts.Inc)
}

type session struct {
	*Consumer
	dead *amqp.Channel // on its own connection, see Publisher
}

// batch is the deliveries taken since the last batch was handed to storage.
type batch struct {
	events  []ingest.Event
	invalid []deadLetter
	last    uint64    // delivery tag of the newest delivery in the batch
	held    int       // deliveries in the batch
	oldest  time.Time // when the batch's first delivery was published, as far as known
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
	closed := conn.NotifyClose(make(chan *amqp.Error, 1))
	// The broker closes the channel alone, e.g. on its consumer_timeout.
	chClosed := ch.NotifyClose(make(chan *amqp.Error, 1))
	go c.sampleDepth(ctx, conn)
	if err := c.waitReady(ctx, closed); err != nil {
		return err
	}
	deliveries, err := ch.Consume(c.Queue, "", false, false, false, false, nil)
	if err != nil {
		return err
	}
	s := &session{Consumer: c, dead: dead}
	c.Log.Info("ingest consumer started", "queue", c.Queue)

	p := newPipeline(s, ch)
	defer p.stop()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	due := false
	for {
		in := deliveries
		if p.storing != nil && len(p.filling.events) >= maxBatchGrowth*c.BatchRows {
			in = nil // full: the broker keeps the rest until the insert is done
		}
		select {
		case <-ctx.Done():
			// Shutting down: store and ack what is held rather than leave it to be
			// redelivered, within a bound in case the sink is down.
			return p.drain()
		case err := <-closed:
			return fmt.Errorf("connection closed: %v", err)
		case err := <-chClosed:
			return fmt.Errorf("channel closed: %v", err)
		case d, ok := <-in:
			if !ok {
				return errors.New("delivery channel closed")
			}
			if p.filling.held == 0 {
				timer.Reset(c.BatchWait)
			}
			s.add(p.filling, d)
			due = due || len(p.filling.events) >= c.BatchRows || p.filling.held >= c.Prefetch
		case <-timer.C:
			due = true
		case err := <-p.stored:
			if err := p.finish(err); err != nil {
				return err
			}
		}
		if due && p.storing == nil {
			timer.Stop()
			due = false
			p.start()
		}
	}
}

// waitReady returns once Ready reports the sink ready (at once without Ready), or
// with an error when ctx ends or the connection closes. It logs when it starts
// waiting and when it is done.
func (c *Consumer) waitReady(ctx context.Context, closed <-chan *amqp.Error) error {
	if c.Ready == nil {
		return nil
	}
	var since time.Time
	for {
		err := c.Ready(ctx)
		if err == nil {
			if !since.IsZero() {
				c.Log.Info("ingest consumer: storage is back; consuming", "waited", time.Since(since).Round(time.Millisecond))
			}
			return nil
		}
		if since.IsZero() {
			since = time.Now()
			c.Log.Warn("ingest consumer: storage cannot take inserts; leaving the backlog in the queue until it can", "err", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-closed:
			return fmt.Errorf("connection closed: %v", err)
		case <-time.After(c.ReadyPoll):
		}
	}
}

// pipeline stores one batch while the next one fills, so parsing never waits for
// ClickHouse, and while an insert is slow the next batch grows, so the consumer
// catches up with fewer, larger inserts. Acks stay in order: a batch is acked
// (multiple, up to its newest delivery) once it is stored, and every older delivery
// was stored before it.
type pipeline struct {
	s       *session
	ch      *amqp.Channel
	ctx     context.Context // for storing; outlives the session's by drainTimeout
	cancel  context.CancelFunc
	filling *batch
	storing *batch // nil while no batch is being stored
	spare   *batch // the next filling batch, reused
	stored  chan error
}

func newPipeline(s *session, ch *amqp.Channel) *pipeline {
	p := &pipeline{s: s, ch: ch, filling: &batch{}, spare: &batch{}, stored: make(chan error, 1)}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	return p
}

// start hands the filling batch to storage.
func (p *pipeline) start() {
	if p.filling.held == 0 {
		return
	}
	p.storing, p.filling, p.spare = p.filling, p.spare, nil
	go func(b *batch) { p.stored <- p.s.store(p.ctx, b) }(p.storing)
}

// finish acks the batch storage is done with, given the outcome of storing it.
func (p *pipeline) finish(err error) error {
	b := p.storing
	p.storing = nil
	if err != nil {
		return err
	}
	if err := p.ch.Ack(b.last, true); err != nil {
		return fmt.Errorf("ack: %w", err)
	}
	clear(b.events) // drop references to properties
	b.events, b.invalid, b.held = b.events[:0], b.invalid[:0], 0
	p.spare = b
	return nil
}

// drain stores and acks everything held, giving up after drainTimeout.
func (p *pipeline) drain() error {
	giveUp := time.AfterFunc(drainTimeout, p.cancel)
	defer giveUp.Stop()
	if p.storing != nil {
		if err := p.finish(<-p.stored); err != nil {
			return err
		}
	}
	p.start()
	if p.storing != nil {
		return p.finish(<-p.stored)
	}
	return nil
}

// stop abandons the batch being stored, if any; its deliveries are redelivered.
func (p *pipeline) stop() {
	p.cancel()
	if p.storing != nil {
		<-p.stored
	}
}

func (s *session) add(b *batch, d amqp.Delivery) {
	received := time.Now()
	events, invalid := ingest.ParseMessage(d.Body, received, d.Timestamp, s.Types)
	source := messageSource(d.Headers)
	for i := range events {
		events[i].Source = source
	}
	b.events = append(b.events, s.Privacy.Consumed(events, ingest.ForAnalytics)...)
	for _, inv := range invalid {
		b.invalid = append(b.invalid, deadLetter{routingKey: d.RoutingKey, Invalid: inv})
	}
	b.last = d.DeliveryTag
	if b.held == 0 {
		// The publisher's stamp, bounded by the consumer's clock as ParseMessage
		// bounds it: a backend's clock ahead must not make the lag negative.
		b.oldest = received
		if t := d.Timestamp; !t.IsZero() && t.Before(received) && t.After(received.Add(-ingest.MaxBacklog)) {
			b.oldest = t
		}
	}
	b.held++
}

// messageSource is where a message's events come from: a backend when it carries no
// SourceHeader; else the collector's client or server key, any other value counting
// as a client's (not trusted).
func messageSource(h amqp.Table) ingest.Source {
	v, ok := h[SourceHeader]
	if !ok {
		return ingest.SourceAMQP
	}
	if s, _ := v.(string); ingest.Source(s) == ingest.SourceServer {
		return ingest.SourceServer
	}
	return ingest.SourceClient
}

// store inserts the batch and dead-letters its invalid events. It returns an error
// only when ctx ended or the dead-letter connection was lost; the session then
// ends and the batch's deliveries are redelivered.
func (s *session) store(ctx context.Context, b *batch) error {
	if len(b.events) > 0 { // the sink dedups the batch
		start := time.Now()
		if err := s.retry(ctx, "insert into ClickHouse", len(b.events), func(ctx context.Context) error {
			return s.Sink.Insert(ctx, b.events)
		}); err != nil {
			return err
		}
		s.Metrics.InsertLatency.Observe(time.Since(start).Seconds())
		s.Metrics.Lag.Observe(time.Since(b.oldest).Seconds())
		s.Metrics.BatchRows.Observe(float64(len(b.events)))
		s.Metrics.Inserted.Add(float64(len(b.events)))
	}
	if len(b.invalid) > 0 {
		if err := s.retry(ctx, "dead-letter invalid events", len(b.invalid), func(ctx context.Context) error {
			return s.deadLetter(ctx, b.invalid)
		}); err != nil {
			return err
		}
		s.Metrics.DeadLettered.Add(float64(len(b.invalid)))
	}
	return nil
}

// retry runs op until it succeeds, with backoff. It gives up only when ctx ends
// (the session is over, so the deliveries cannot be acked anyway) or op fails on a
// closed AMQP channel, which only a new session can replace.
func (s *session) retry(ctx context.Context, what string, rows int, op func(context.Context) error) error {
	delay := 100 * time.Millisecond
	for {
		opCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := op(opCtx)
		cancel()
		if err == nil || errors.Is(err, amqp.ErrClosed) {
			return err
		}
		s.Log.Warn("ingest consumer: "+what+" failed; holding the batch and retrying",
			"err", err, "rows", rows, "backoff", delay)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
		delay = backoff(delay)
	}
}

// deadLetter publishes every invalid event to lift.dlx with its reason and waits for
// the confirms.
func (s *session) deadLetter(ctx context.Context, invalid []deadLetter) error {
	confirms := make([]*amqp.DeferredConfirmation, 0, len(invalid))
	for _, inv := range invalid {
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
