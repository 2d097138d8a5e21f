package amqpbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/liftlab/lift/ingest"
	"github.com/liftlab/lift/internal/derrors"
)

// ConfirmTimeout bounds how long Publish waits for the broker's confirms: a client
// waiting longer would rather retry.
const ConfirmTimeout = 5 * time.Second

// Publisher publishes events to lift.events on its own connection (a consumer's
// connection may be blocked by flow control while this one is not, and the other way
// round) and reports success only for confirmed messages. Run keeps the connection
// up; while it is down or blocked by a resource alarm, Publish fails at once.
type Publisher struct {
	url     string
	log     *slog.Logger
	metrics *ingest.Metrics

	mu      sync.RWMutex
	ch      *amqp.Channel // nil while disconnected
	blocked string        // non-empty while the broker blocks publishing

	// returned holds message ids the broker returned as unroutable (mandatory). The
	// return precedes the confirm on the wire, so it is recorded before Publish
	// looks, except for a tiny window in the return-reading goroutine; a topology
	// whose queues were deleted is found out by the next publishes either way.
	returned sync.Map

	connectedOnce sync.Once
	connected     chan struct{} // closed on the first successful connection
}

// NewPublisher returns a publisher for the broker at url; call Run to connect.
func NewPublisher(url string, log *slog.Logger, m *ingest.Metrics) *Publisher {
	return &Publisher{url: url, log: log, metrics: m, connected: make(chan struct{})}
}

// WaitConnected waits until the first connection is up or ctx ends, so a server can
// start listening with a working collector when the broker is there, without
// refusing to start when it is not.
func (p *Publisher) WaitConnected(ctx context.Context) error {
	select {
	case <-p.connected:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Run connects, declares the topology and reconnects with backoff until ctx ends.
func (p *Publisher) Run(ctx context.Context) {
	keepUp(ctx, p.log, "amqp publisher disconnected", p.session, nil)
}

func (p *Publisher) session(ctx context.Context) error {
	conn, err := Dial(p.url)
	if err != nil {
		return err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	if err := Declare(ch); err != nil {
		return err
	}
	if err := ch.Confirm(false); err != nil {
		return err
	}
	closed := conn.NotifyClose(make(chan *amqp.Error, 1))
	chClosed := ch.NotifyClose(make(chan *amqp.Error, 1))
	blocked := conn.NotifyBlocked(make(chan amqp.Blocking, 1))
	returns := ch.NotifyReturn(make(chan amqp.Return, 64))
	p.setChannel(ch, "")
	defer p.setChannel(nil, "")
	p.connectedOnce.Do(func() { close(p.connected) })
	p.log.Info("amqp publisher connected")
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-closed:
			return fmt.Errorf("connection closed: %w", err)
		case err := <-chClosed:
			return fmt.Errorf("channel closed: %w", err)
		case b := <-blocked:
			reason := ""
			if b.Active {
				reason = b.Reason
				if reason == "" {
					reason = "blocked"
				}
				p.log.Warn("broker blocks publishing", "reason", reason)
			} else {
				p.log.Info("broker unblocked publishing")
			}
			p.setChannel(ch, reason)
		case r := <-returns:
			p.returned.Store(r.MessageId, r.ReplyText)
		}
	}
}

func (p *Publisher) setChannel(ch *amqp.Channel, blocked string) {
	p.mu.Lock()
	p.ch, p.blocked = ch, blocked
	p.mu.Unlock()
}

// Ready reports whether Publish can currently succeed, for /readyz.
func (p *Publisher) Ready(context.Context) error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	switch {
	case p.ch == nil:
		return fmt.Errorf("event broker %w: not connected", derrors.ErrUnavailable)
	case p.blocked != "":
		return fmt.Errorf("event broker %w: blocked: %s", derrors.ErrUnavailable, p.blocked)
	}
	return nil
}

// Publish sends the events as one message per event type (a JSON array routed by
// the type) and source (events with a Source carry it in SourceHeader), publishing every message before waiting for any confirm so a request
// costs one round trip however many events it carries. It returns nil once the
// broker confirmed every message, and otherwise an error wrapping
// derrors.ErrUnavailable.
func (p *Publisher) Publish(ctx context.Context, events []ingest.Event) error {
	if len(events) == 0 {
		return nil
	}
	p.mu.RLock()
	ch, blocked := p.ch, p.blocked
	p.mu.RUnlock()
	switch {
	case ch == nil:
		return fmt.Errorf("event broker %w: not connected", derrors.ErrUnavailable)
	case blocked != "":
		return fmt.Errorf("event broker %w: broker blocked: %s", derrors.ErrUnavailable, blocked)
	}

	ctx, cancel := context.WithTimeout(ctx, ConfirmTimeout)
	defer cancel()
	start := time.Now()
	type pending struct {
		id      string
		confirm *amqp.DeferredConfirmation
	}
	var sent []pending
	for key, group := range groupMessages(events) {
		typ := key.typ
		body, err := ingest.AppendMessage(make([]byte, 0, 256*len(group)), group)
		if err != nil {
			return fmt.Errorf("amqpbus: encode %s events: %w", typ, err)
		}
		id := uuid.NewString()
		var headers amqp.Table
		if key.source != "" {
			headers = amqp.Table{SourceHeader: string(key.source)}
		}
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, Exchange, typ, true, false, amqp.Publishing{
			Headers:      headers,
			ContentType:  "application/json",
			DeliveryMode: amqp.Persistent,
			MessageId:    id,
			Timestamp:    start,
			Body:         body,
		})
		if err != nil {
			return fmt.Errorf("event broker %w: publish: %v", derrors.ErrUnavailable, err)
		}
		sent = append(sent, pending{id, dc})
	}
	for _, s := range sent {
		acked, err := s.confirm.WaitContext(ctx)
		if text, ok := p.returned.LoadAndDelete(s.id); ok {
			return fmt.Errorf("event broker %w: message unroutable: %v", derrors.ErrUnavailable, text)
		}
		switch {
		case errors.Is(err, context.DeadlineExceeded):
			return fmt.Errorf("event broker %w: no confirm within %s", derrors.ErrUnavailable, ConfirmTimeout)
		case err != nil:
			return fmt.Errorf("event broker %w: %v", derrors.ErrUnavailable, err)
		case !acked:
			return fmt.Errorf("event broker %w: broker did not confirm the message", derrors.ErrUnavailable)
		}
	}
	p.metrics.ConfirmLatency.Observe(time.Since(start).Seconds())
	return nil
}

// messageKey is what the events of one message share: the type routes it, the
// source travels in its SourceHeader.
type messageKey struct {
	typ    string
	source ingest.Source
}

func groupMessages(events []ingest.Event) map[messageKey][]ingest.Event {
	mixed := false
	for i := range events {
		mixed = mixed || events[i].Type != events[0].Type || events[i].Source != events[0].Source
	}
	if !mixed { // the usual request: no copy
		return map[messageKey][]ingest.Event{{events[0].Type, events[0].Source}: events}
	}
	groups := make(map[messageKey][]ingest.Event, 2)
	for _, e := range events {
		k := messageKey{e.Type, e.Source}
		groups[k] = append(groups[k], e)
	}
	return groups
}
