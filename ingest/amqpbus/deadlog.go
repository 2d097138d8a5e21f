package amqpbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/liftlab/lift/ingest"
)

// DeadLetterLog records every dead letter in a DeadLetterSink for the dashboard. It
// consumes lift.dead.log, a second queue bound to lift.dlx beside lift.dead, so lift
// never reads, reorders or drains lift.dead: operators replay or purge that queue
// with their own tools. It acks a batch only once the sink stored it, and while the
// sink fails it holds the batch and retries. The queue has a single active consumer,
// so any number of ingest processes may run a log and exactly one records, in order.
type DeadLetterLog struct {
	URL  string
	Sink ingest.DeadLetterSink
	Log  *slog.Logger
	// Privacy pseudonymises the user_id recorded beside each body, as everywhere
	// else in storage, so erasing a user finds their dead letters too. The bodies
	// stay as lift.dead holds them.
	Privacy *ingest.Privacy
	// BatchWait is how long a batch waits for more messages (default 1 s); a batch
	// holds at most 500.
	BatchWait time.Duration
}

const deadLogBatch = 500

// Run records until ctx ends, reconnecting with backoff that starts over once a
// session lasted a minute.
func (l *DeadLetterLog) Run(ctx context.Context) {
	if l.BatchWait <= 0 {
		l.BatchWait = time.Second
	}
	keepUp(ctx, l.Log, "dead letter log stopped", l.session, nil)
}

func (l *DeadLetterLog) session(ctx context.Context) error {
	conn, err := Dial(l.URL)
	if err != nil {
		return err
	}
	defer conn.Close()
	closed := conn.NotifyClose(make(chan *amqp.Error, 1))
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	if err := Declare(ch); err != nil {
		return err
	}
	if err := ch.Qos(deadLogBatch, 0, false); err != nil {
		return err
	}
	deliveries, err := ch.Consume(DeadLogQueue, "", false, false, false, false, nil)
	if err != nil {
		return err
	}
	var batch []ingest.DeadLetter
	var last, seq uint64
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case d, ok := <-deliveries:
			if !ok {
				return errors.New("delivery channel closed")
			}
			if len(batch) == 0 {
				timer.Reset(l.BatchWait)
			}
			// Nanoseconds, kept increasing: the next log to take over (on another
			// machine, after this one stops) continues above them.
			seq = max(seq+1, uint64(time.Now().UnixNano()))
			letter := deadLetterOf(d, time.Now())
			letter.Seq = seq
			if letter.UserID != "" {
				letter.UserID = l.Privacy.UserID(letter.UserID)
			}
			batch, last = append(batch, letter), d.DeliveryTag
			if len(batch) < deadLogBatch {
				continue
			}
		case <-timer.C:
		}
		timer.Stop()
		if len(batch) == 0 {
			continue
		}
		if err := l.store(ctx, closed, batch); err != nil {
			return err
		}
		if err := ch.Ack(last, true); err != nil {
			return fmt.Errorf("ack: %w", err)
		}
		batch = batch[:0]
	}
}

// store inserts the batch, retrying with backoff until it succeeds, ctx ends or the
// connection is lost (the deliveries are then redelivered).
func (l *DeadLetterLog) store(ctx context.Context, closed <-chan *amqp.Error, batch []ingest.DeadLetter) error {
	delay := 100 * time.Millisecond
	for {
		opCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := l.Sink.InsertDeadLetters(opCtx, batch)
		cancel()
		if err == nil {
			return nil
		}
		l.Log.Warn("dead letter log: insert failed; holding the batch and retrying", "err", err, "rows", len(batch), "backoff", delay)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-closed:
			return fmt.Errorf("connection closed while retrying: %w", err)
		case <-time.After(delay):
		}
		delay = backoff(delay)
	}
}

// deadLetterOf reads a dead letter's reason and time: a consumer's x-lift-reason and
// publish timestamp, or, for a message the broker dead-lettered itself, the newest
// x-death entry ("delivery_limit from lift.ingest").
func deadLetterOf(d amqp.Delivery, now time.Time) ingest.DeadLetter {
	at, reason := d.Timestamp, ""
	if r, ok := d.Headers[ReasonHeader].(string); ok {
		reason = r
	} else if deaths, ok := d.Headers["x-death"].([]any); ok && len(deaths) > 0 {
		if death, ok := deaths[0].(amqp.Table); ok {
			why, _ := death["reason"].(string)
			queue, _ := death["queue"].(string)
			reason = "broker: " + why
			if queue != "" {
				reason += " from " + queue
			}
			if t, ok := death["time"].(time.Time); ok {
				at = t
			}
		}
	}
	if reason == "" {
		reason = "unknown (no x-lift-reason or x-death header)"
	}
	if at.IsZero() {
		at = now
	}
	return ingest.NewDeadLetter(at, d.RoutingKey, reason, d.Body)
}

// QueueInspector reports how many messages a queue holds, for pages that show it. It
// keeps one connection between calls and opens it again after a failure.
type QueueInspector struct {
	URL string

	mu   sync.Mutex
	conn *amqp.Connection
}

// Depth returns the number of ready messages in queue. It fails if the broker does
// not answer before ctx ends or the queue does not exist.
func (q *QueueInspector) Depth(ctx context.Context, queue string) (int, error) {
	type answer struct {
		n   int
		err error
	}
	done := make(chan answer, 1)
	go func() {
		n, err := q.depth(queue)
		done <- answer{n, err}
	}()
	select {
	case a := <-done:
		return a.n, a.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

func (q *QueueInspector) depth(queue string) (int, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.conn == nil || q.conn.IsClosed() {
		conn, err := Dial(q.URL)
		if err != nil {
			return 0, err
		}
		q.conn = conn
	}
	// A failed passive declare closes its channel, so each call takes its own.
	ch, err := q.conn.Channel()
	if err != nil {
		q.conn.Close()
		q.conn = nil
		return 0, err
	}
	defer ch.Close()
	st, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
	if err != nil {
		return 0, fmt.Errorf("amqpbus: inspect queue %s: %w", queue, err)
	}
	return st.Messages, nil
}

// Close closes the connection, if one is open.
func (q *QueueInspector) Close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.conn != nil {
		q.conn.Close()
		q.conn = nil
	}
}
