package main

import (
	"context"

	"github.com/liftlab/lift/ingest/amqpbus"
	segstore "github.com/liftlab/lift/segments/pgstore"
)

// segmentActivity gives the dashboard a behavioural segment's entries and exits over
// the last hour, from the segment engine's membership table.
type segmentActivity struct{ store *segstore.Store }

func (a segmentActivity) SegmentActivity(ctx context.Context, segment string) (entered, exited int64, err error) {
	st, err := a.store.Stats(ctx, segment)
	return st.EnteredHour, st.ExitedHour, err
}

// deadQueue tells the dashboard how many messages lift.dead holds.
type deadQueue struct{ inspector *amqpbus.QueueInspector }

func (q deadQueue) DeadQueueDepth(ctx context.Context) (int, error) {
	return q.inspector.Depth(ctx, amqpbus.DeadQueue)
}
