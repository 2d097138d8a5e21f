// Package amqprunner runs the behavioural segment engine on the lift.segments queue:
// events in, membership changes out to a store, with checkpoints so a restart neither
// loses nor double-counts an event.
//
// Exactly-once comes from acknowledging late: deliveries are acknowledged (all at
// once) only after a checkpoint that includes them has been saved. After a crash the
// broker redelivers everything since the last checkpoint, and the engine restored
// from that checkpoint applies it as if for the first time. Membership changes made
// in between are emitted again, which the store's idempotent upsert absorbs.
package amqprunner

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/liftlab/lift/ingest"
	"github.com/liftlab/lift/ingest/amqpbus"
	"github.com/liftlab/lift/segments"
)

// Store keeps memberships and checkpoints.
type Store interface {
	Apply(ctx context.Context, changes []segments.Change) error
	SaveCheckpoint(ctx context.Context, shard int, definitions string, state []byte) error
	LoadCheckpoint(ctx context.Context, shard int) (definitions string, state []byte, ok bool, err error)
}

// ChangeLog records membership changes for analysts (segments/chsink writes them to
// ClickHouse). Record must be idempotent: the changes since the last checkpoint are
// recorded again after a restart, and a batch is retried after any failed flush.
type ChangeLog interface {
	Record(ctx context.Context, changes []segments.Change) error
}

// Definitions returns the behavioural segments to evaluate and a fingerprint that
// changes whenever they do.
type Definitions func(ctx context.Context) ([]segments.Definition, string, error)

// Runner consumes lift.segments into one engine.
type Runner struct {
	URL   string
	Store Store
	// Changes, if not nil, records every membership change for analysts after
	// Store.Apply. It must not hold up decisions: while it fails, changes wait in a
	// bounded buffer (MaxUnrecorded) and are retried at every flush; past the bound the
	// oldest are dropped and logged. Changes still buffered when the process dies are
	// lost to the log (memberships themselves are not).
	Changes       ChangeLog
	MaxUnrecorded int
	Definitions   Definitions
	Log           *slog.Logger
	// FlushEvery bounds how long a membership change waits before it is stored
	// (default 50 ms): it is most of the delay between an event and the decision
	// that sees its segment.
	FlushEvery time.Duration
	// CheckpointEvery is how often the engine's state is saved and deliveries
	// acknowledged (default 5 s).
	CheckpointEvery time.Duration
	// Prefetch is how many unacknowledged deliveries the runner holds; a checkpoint
	// is also taken when half of them are outstanding (default 20,000).
	Prefetch int
	// Shard numbers this runner's checkpoint (one engine per shard).
	Shard int
	// Observe, if set, gets the engine's statistics, the checkpoint's size and the
	// lag after a checkpoint, at most once a second (for the lift_segment_* metrics).
	// The lag is the time from the collector's receipt of the newest event applied
	// to its application.
	Observe func(stats segments.Stats, checkpointBytes int, lag time.Duration)
	// Privacy protects events that backends published raw and leaves out those
	// without personalisation consent; nil: every event counts.
	Privacy *ingest.Privacy
	// Erasures, if not nil, names users to forget (erasure jobs, docs/privacy.md):
	// at every checkpoint the engine drops their state before the snapshot, and
	// they are reported forgotten once that checkpoint is saved.
	Erasures Erasures
}

// Erasures are the users a shard must forget.
type Erasures interface {
	PendingErasures(ctx context.Context, shard int) ([]string, error)
	Forgotten(ctx context.Context, shard int, userIDs []string) error
}

// forget drops the state of the users pending erasure from the engine.
func (r *Runner) forget(ctx context.Context, engine *segments.Engine) ([]string, error) {
	if r.Erasures == nil {
		return nil, nil
	}
	ids, err := r.Erasures.PendingErasures(ctx, r.Shard)
	for _, id := range ids {
		engine.Forget(id)
	}
	return ids, err
}

// Run consumes until ctx ends, reconnecting after failures, and saves a last
// checkpoint on the way out.
func (r *Runner) Run(ctx context.Context) {
	if r.FlushEvery == 0 {
		r.FlushEvery = 50 * time.Millisecond
	}
	if r.CheckpointEvery == 0 {
		r.CheckpointEvery = 5 * time.Second
	}
	if r.Prefetch == 0 {
		r.Prefetch = 20_000
	}
	for ctx.Err() == nil {
		err := r.session(ctx)
		if ctx.Err() != nil {
			return
		}
		r.Log.Warn("segment engine restarting", "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// session builds an engine from the current definitions and its checkpoint, then
// consumes until an error, a change of definitions, or the end of ctx.
func (r *Runner) session(ctx context.Context) error {
	defs, fingerprint, err := r.Definitions(ctx)
	if err != nil {
		return fmt.Errorf("segment definitions: %w", err)
	}
	var pending []segments.Change
	engine, err := segments.NewEngine(defs, segments.Options{OnChange: func(c segments.Change) { pending = append(pending, c) }})
	if err != nil {
		return err
	}
	if saved, state, ok, err := r.Store.LoadCheckpoint(ctx, r.Shard); err != nil {
		return err
	} else if ok && saved == fingerprint {
		if _, err := engine.Restore(bytes.NewReader(state)); err != nil {
			r.Log.Warn("segment checkpoint unusable; starting empty", "err", err)
		}
	} else if ok {
		// The definitions changed: their state cannot carry over. Memberships start
		// from the events that arrive from now on.
		r.Log.Info("segment definitions changed; starting a new engine state")
	}

	conn, err := amqpbus.Dial(r.URL)
	if err != nil {
		return err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	if err := amqpbus.Declare(ch); err != nil {
		return err
	}
	if err := ch.Qos(r.Prefetch, 0, false); err != nil {
		return err
	}
	deliveries, err := ch.Consume(amqpbus.SegmentsQueue, "", false, false, false, false, nil)
	if err != nil {
		return err
	}
	closed := conn.NotifyClose(make(chan *amqp.Error, 1))

	var lastTag uint64
	var lastObserved time.Time
	var lag time.Duration
	outstanding := 0
	offset := engine.Offset()
	var unrecorded []segments.Change
	maxUnrecorded := r.MaxUnrecorded
	if maxUnrecorded == 0 {
		maxUnrecorded = 100_000
	}
	flush := func(ctx context.Context) error {
		if len(pending) > 0 {
			if err := r.Store.Apply(ctx, pending); err != nil {
				return err
			}
			if r.Changes != nil {
				unrecorded = append(unrecorded, pending...)
			}
			pending = pending[:0]
		}
		if len(unrecorded) == 0 {
			return nil
		}
		if err := r.Changes.Record(ctx, unrecorded); err != nil {
			if over := len(unrecorded) - maxUnrecorded; over > 0 {
				r.Log.Error("segment change log unavailable; dropping the oldest changes", "dropped", over, "err", err)
				unrecorded = slices.Delete(unrecorded, 0, over)
			}
			return nil // memberships are stored; the log catches up when it can
		}
		unrecorded = unrecorded[:0]
		return nil
	}
	checkpoint := func(ctx context.Context) error {
		if err := flush(ctx); err != nil {
			return err
		}
		forgotten, err := r.forget(ctx, engine)
		if err != nil {
			return err
		}
		var buf bytes.Buffer
		if err := engine.Snapshot(&buf); err != nil {
			return err
		}
		if err := r.Store.SaveCheckpoint(ctx, r.Shard, fingerprint, buf.Bytes()); err != nil {
			return err
		}
		if len(forgotten) > 0 {
			if err := r.Erasures.Forgotten(ctx, r.Shard, forgotten); err != nil {
				return err
			}
		}
		if now := time.Now(); r.Observe != nil && now.Sub(lastObserved) >= time.Second {
			r.Observe(engine.Stats(), buf.Len(), lag)
			lastObserved = now
		}
		if outstanding > 0 {
			if err := ch.Ack(lastTag, true); err != nil {
				return err
			}
			outstanding = 0
		}
		return nil
	}
	// Record at once which definitions this engine runs, so operators (and tests)
	// can see when a change has been picked up.
	if err := checkpoint(ctx); err != nil {
		return err
	}
	flushTick := time.NewTicker(r.FlushEvery)
	defer flushTick.Stop()
	clock := time.NewTicker(time.Second)
	defer clock.Stop()
	cpTick := time.NewTicker(r.CheckpointEvery)
	defer cpTick.Stop()
	for {
		select {
		case <-ctx.Done():
			return checkpoint(context.WithoutCancel(ctx))
		case err := <-closed:
			return fmt.Errorf("broker connection closed: %v", err)
		case d, ok := <-deliveries:
			if !ok {
				return fmt.Errorf("delivery channel closed")
			}
			events, _ := ingest.ParseMessage(d.Body, time.Now(), anyType{})
			for _, e := range r.Privacy.Consumed(events, ingest.ForPersonalization) {
				offset++
				engine.Process(segments.Event{Offset: offset, UserID: e.UserID, Type: e.Type, Time: e.Timestamp,
					ReceivedAt: e.ReceivedAt, Value: e.Value, Properties: e.Properties})
			}
			if n := len(events); n > 0 {
				lag = time.Since(events[n-1].ReceivedAt)
			}
			lastTag = d.DeliveryTag
			outstanding++
			if outstanding >= r.Prefetch/2 {
				if err := checkpoint(ctx); err != nil {
					return err
				}
			}
		case <-flushTick.C:
			if err := flush(ctx); err != nil {
				return err
			}
		case now := <-clock.C:
			engine.Tick(now)
			// A new or changed segment counts events from the moment it is picked
			// up here, within a second of the change.
			if _, fp, err := r.Definitions(ctx); err == nil && fp != fingerprint {
				if err := checkpoint(ctx); err != nil {
					return err
				}
				return fmt.Errorf("segment definitions changed")
			}
		case <-cpTick.C:
			if err := checkpoint(ctx); err != nil {
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
