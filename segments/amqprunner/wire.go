package amqprunner

import (
	"encoding/json"
	"time"

	"github.com/liftlab/lift/ingest"
	"github.com/liftlab/lift/segments"
)

// routed is one event in a shard stream message (a JSON array of them), with what
// the engine needs and nothing else. O is the event's offset in lift.segments
// (message offset << indexBits | index in the message): it increases along
// lift.segments, so an engine skips the copies a restarted router publishes again.
type routed struct {
	O int64           `json:"o"`
	U string          `json:"u"`
	T string          `json:"t"`
	S int64           `json:"s"` // timestamp, Unix ms
	R int64           `json:"r"` // received, Unix ms
	V float64         `json:"v,omitempty"`
	P json.RawMessage `json:"p,omitempty"`
}

// indexBits bounds the events of one lift.segments message (a million: far more
// than a 1 MiB message can hold).
const indexBits = 20

func routedOf(offset int64, index int, e ingest.Event) routed {
	r := routed{O: offset<<indexBits | int64(index), U: e.UserID, T: e.Type, S: e.Timestamp.UnixMilli(),
		R: e.ReceivedAt.UnixMilli(), V: e.Value}
	if len(e.Properties) > 0 && string(e.Properties) != "{}" && string(e.Properties) != "null" {
		r.P = e.Properties
	}
	return r
}

func (r *routed) event() segments.Event {
	return segments.Event{Offset: r.O, UserID: r.U, Type: r.T, Time: time.UnixMilli(r.S), ReceivedAt: time.UnixMilli(r.R),
		Value: r.V, Properties: r.P}
}
