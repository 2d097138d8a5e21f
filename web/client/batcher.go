package client

import (
	"context"
	"errors"
	"sync"
	"time"
)

// Sink sends a batch of events and returns nil once they are stored or confirmed:
// *Client (HTTP) and *amqpclient.Publisher (RabbitMQ) are sinks.
type Sink interface {
	Send(ctx context.Context, events []Event) error
}

// BatcherOptions tune a Batcher; zero values take the defaults.
type BatcherOptions struct {
	Size     int           // events per batch (default 500)
	Interval time.Duration // longest an event waits for its batch (default 1 s)
	Buffer   int           // events queued before Add refuses more (default 100,000)
	// OnError is told of a batch the sink refused for good (events rejected as
	// invalid) or could not deliver before Close gave up; default: ignored.
	OnError func(err error, events []Event)
}

// Batcher queues events without blocking the caller and sends them to a sink in
// batches, retrying a failed batch with backoff until it goes through, so events are
// delivered at least once (their ids make storage keep one copy).
type Batcher struct {
	sink  Sink
	opts  BatcherOptions
	queue chan Event
	flush chan chan struct{}
	done  chan struct{}
	stop  context.CancelFunc
	ctx   context.Context

	closeOnce sync.Once
}

// ErrQueueFull is returned by Add when the buffer is full (the sink is down or slower
// than the events); the event was not queued.
var ErrQueueFull = errors.New("lift client: event queue full")

// NewBatcher starts a batcher sending to sink; call Close to flush and stop it.
func NewBatcher(sink Sink, opts BatcherOptions) *Batcher {
	if opts.Size <= 0 {
		opts.Size = 500
	}
	if opts.Interval <= 0 {
		opts.Interval = time.Second
	}
	if opts.Buffer <= 0 {
		opts.Buffer = 100_000
	}
	if opts.OnError == nil {
		opts.OnError = func(error, []Event) {}
	}
	ctx, stop := context.WithCancel(context.Background())
	b := &Batcher{sink: sink, opts: opts, queue: make(chan Event, opts.Buffer),
		flush: make(chan chan struct{}), done: make(chan struct{}), stop: stop, ctx: ctx}
	go b.run()
	return b
}

// Add queues one event (its ID and Timestamp are set now when empty, so the event
// keeps the time it happened). It returns ErrQueueFull rather than block.
func (b *Batcher) Add(e Event) error {
	one := []Event{e}
	Prepare(one)
	select {
	case b.queue <- one[0]:
		return nil
	default:
		return ErrQueueFull
	}
}

// Flush sends everything queued so far and waits for it, or for ctx.
func (b *Batcher) Flush(ctx context.Context) error {
	ack := make(chan struct{})
	select {
	case b.flush <- ack:
	case <-b.done:
		return errors.New("lift client: batcher closed")
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-ack:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close sends what is queued, retrying until ctx ends, then stops. Events still
// undelivered then are passed to OnError.
func (b *Batcher) Close(ctx context.Context) error {
	var err error
	b.closeOnce.Do(func() {
		err = b.Flush(ctx)
		b.stop()
		<-b.done
	})
	return err
}

func (b *Batcher) run() {
	defer close(b.done)
	batch := make([]Event, 0, b.opts.Size)
	ticker := time.NewTicker(b.opts.Interval)
	defer ticker.Stop()
	send := func() {
		if len(batch) > 0 {
			b.send(batch)
			batch = make([]Event, 0, b.opts.Size)
		}
	}
	for {
		select {
		case e := <-b.queue:
			batch = append(batch, e)
			if len(batch) >= b.opts.Size {
				send()
			}
		case <-ticker.C:
			send()
		case ack := <-b.flush:
			for drained := false; !drained; {
				select {
				case e := <-b.queue:
					batch = append(batch, e)
					if len(batch) >= b.opts.Size {
						send()
					}
				default:
					drained = true
				}
			}
			send()
			close(ack)
		case <-b.ctx.Done():
			return
		}
	}
}

// send delivers one batch, retrying anything but a rejection until the batcher stops.
func (b *Batcher) send(batch []Event) {
	delay := 100 * time.Millisecond
	for {
		err := b.sink.Send(b.ctx, batch)
		var rejected *RejectedError
		switch {
		case err == nil:
			return
		case errors.As(err, &rejected), b.ctx.Err() != nil:
			b.opts.OnError(err, batch)
			return
		}
		select {
		case <-b.ctx.Done():
			b.opts.OnError(err, batch)
			return
		case <-time.After(delay):
		}
		delay = min(2*delay, 5*time.Second)
	}
}
