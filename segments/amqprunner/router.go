package amqprunner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/liftlab/lift/ingest"
	"github.com/liftlab/lift/ingest/amqpbus"
	"github.com/liftlab/lift/segments"
)

// RouterStore keeps the router's progress.
type RouterStore interface {
	RouterOffset(ctx context.Context) (offset int64, ok bool, err error)
	SaveRouterOffset(ctx context.Context, offset int64) error
}

// Router splits lift.segments into one stream per shard (lift.segments.<i>), so that
// each shard's engine reads only its own users' events. Messages may hold one event
// or an array of many users' events; the router parses them and sends each event to
// the shard of its user (segments.Shard), in batches.
//
// It runs in one process at a time (a leader, see internal/leader). It saves the
// lift.segments offset it has split up to only once the shard streams confirmed
// everything before it, so a restart publishes at most the last batches again; their
// events keep their offsets (routed.O), which the engines have already applied and
// skip. Nothing is lost, nothing counted twice.
type Router struct {
	URL    string
	Shards int
	Store  RouterStore
	Log    *slog.Logger
	// FlushEvery bounds how long an event waits in the router (default 10 ms).
	FlushEvery time.Duration
	// Prefetch is how many lift.segments messages the router holds unconfirmed
	// (default 2,000).
	Prefetch int
	// Privacy protects events that backends published raw (pseudonymised ids,
	// scrubbed properties) before they are split by user, and leaves out those
	// without personalisation consent; nil: every event counts as sent.
	Privacy *ingest.Privacy
}

// Run routes until ctx ends, reconnecting after failures.
func (r *Router) Run(ctx context.Context) {
	if r.FlushEvery == 0 {
		r.FlushEvery = 10 * time.Millisecond
	}
	if r.Prefetch == 0 {
		r.Prefetch = 2000
	}
	restarting(ctx, r.Log, "segment router restarting", r.session)
}

// errDefinitionsChanged ends a runner's session so that the next one runs the new
// segment definitions; it is no failure, so the next session starts at once.
var errDefinitionsChanged = errors.New("segment definitions changed")

// restarting runs session until ctx ends, again a second after each failure, at
// once after a change of definitions.
func restarting(ctx context.Context, log *slog.Logger, msg string, session func(context.Context) error) {
	for ctx.Err() == nil {
		err := session(ctx)
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, errDefinitionsChanged) {
			log.Info("segment definitions changed; restarting the engine")
			continue
		}
		log.Warn(msg, "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

func (r *Router) session(ctx context.Context) error {
	saved, ok, err := r.Store.RouterOffset(ctx)
	if err != nil {
		return err
	}
	start := any("first") // a new deployment: everything the stream still holds
	if ok {
		start = saved + 1
	} else {
		saved = -1
	}
	conn, err := amqpbus.Dial(r.URL)
	if err != nil {
		return err
	}
	defer conn.Close()
	closed := conn.NotifyClose(make(chan *amqp.Error, 1))
	in, err := conn.Channel()
	if err != nil {
		return err
	}
	if err := amqpbus.Declare(in); err != nil {
		return err
	}
	out, err := conn.Channel()
	if err != nil {
		return err
	}
	for i := range r.Shards {
		if err := declareShard(out, i); err != nil {
			return err
		}
	}
	if err := out.Confirm(false); err != nil {
		return err
	}
	confirms := out.NotifyPublish(make(chan amqp.Confirmation, 4*r.Shards+16))
	if err := in.Qos(r.Prefetch, 0, false); err != nil {
		return err
	}
	deliveries, err := in.Consume(amqpbus.SegmentsQueue, "", false, false, false, false, amqp.Table{"x-stream-offset": start})
	if err != nil {
		return err
	}

	batches := make([][]routed, r.Shards)
	buffered, last, lastTag, unacked := 0, saved, uint64(0), 0
	flush := func() error {
		if last == saved {
			if unacked > 0 { // only messages before the saved offset
				unacked = 0
				return in.Ack(lastTag, true)
			}
			return nil
		}
		published := 0
		for shard, batch := range batches {
			if len(batch) == 0 {
				continue
			}
			body, err := json.Marshal(batch)
			if err != nil {
				return err
			}
			err = out.PublishWithContext(ctx, "", ShardQueue(shard), false, false, amqp.Publishing{
				ContentType: "application/json", DeliveryMode: amqp.Persistent, Body: body,
				Headers: amqp.Table{shardsHeader: int32(r.Shards)},
			})
			if err != nil {
				return err
			}
			published++
			batches[shard] = batch[:0]
		}
		for range published {
			select {
			case c := <-confirms:
				if !c.Ack {
					return fmt.Errorf("a shard stream refused a batch")
				}
			case err := <-closed:
				return fmt.Errorf("broker connection closed: %v", err)
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if err := r.Store.SaveRouterOffset(ctx, last); err != nil {
			return err
		}
		saved, buffered = last, 0
		if unacked > 0 {
			unacked = 0
			return in.Ack(lastTag, true) // stream credit: lets the broker send more
		}
		return nil
	}
	tick := time.NewTicker(r.FlushEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-closed:
			return fmt.Errorf("broker connection closed: %v", err)
		case d, ok := <-deliveries:
			if !ok {
				return fmt.Errorf("delivery channel closed")
			}
			lastTag, unacked = d.DeliveryTag, unacked+1
			offset, ok := d.Headers["x-stream-offset"].(int64)
			if !ok {
				return fmt.Errorf("a lift.segments message without x-stream-offset: is lift.segments a stream? (run lift migrate)")
			}
			if offset <= saved {
				continue // streams deliver from the start of a chunk
			}
			// The ingest consumer dead-letters invalid events; here they are skipped.
			events, _ := ingest.ParseMessage(d.Body, time.Now(), d.Timestamp, anyType{})
			// Indexes count every valid event, consented or not, so that they do
			// not depend on consent.
			for i, e := range events {
				if len(r.Privacy.Consumed(events[i:i+1:i+1], ingest.ForPersonalization)) == 0 {
					continue
				}
				e = events[i]
				if i >= 1<<indexBits {
					r.Log.Error("a lift.segments message with too many events; the rest are ignored", "offset", offset)
					break
				}
				shard := segments.Shard(e.UserID, r.Shards)
				batches[shard] = append(batches[shard], routedOf(offset, i, e))
			}
			buffered += len(events)
			last = offset
			if buffered >= 5000 || unacked >= r.Prefetch/2 {
				if err := flush(); err != nil {
					return err
				}
			}
		case <-tick.C:
			if err := flush(); err != nil {
				return err
			}
		}
	}
}

// anyType accepts custom event types whatever their properties: the ingest consumer
// enforces schemas (and dead-letters what fails them); the segment engine only reads.
type anyType struct{}

func (anyType) Lookup(string) (ingest.PropertiesValidator, bool) { return acceptAll{}, true }

type acceptAll struct{}

func (acceptAll) ValidateProperties(json.RawMessage) error { return nil }
