package ingest

import "context"

// Publisher hands events to the broker. Publish returns nil only once the broker has
// confirmed every event; otherwise it returns an error wrapping derrors.ErrUnavailable, and
// the caller must not report any of them as accepted.
type Publisher interface {
	Publish(ctx context.Context, events []Event) error
}

// Sink stores a batch of events. Insert must be idempotent by event id (a batch may
// be inserted again after a crash or a lost ack) and return an error, without a
// partial success being reported, when the store is unreachable.
type Sink interface {
	Insert(ctx context.Context, events []Event) error
}

// Dedup removes events whose id occurred earlier in the batch, in place. Storage
// collapses duplicates only at merge time, while materialized views see every
// inserted row, so a batch must not carry the same event twice.
func Dedup(events []Event) []Event {
	seen := make(map[[16]byte]struct{}, len(events))
	out := events[:0]
	for _, e := range events {
		if _, dup := seen[e.ID]; dup {
			continue
		}
		seen[e.ID] = struct{}{}
		out = append(out, e)
	}
	return out
}
