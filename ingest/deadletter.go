package ingest

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"time"
)

// DeadLetter is a message the pipeline could not store (unparseable, or an invalid
// event), as recorded for the dashboard's view of lift.dead.
type DeadLetter struct {
	// ID identifies the message by its content and time, so recording a redelivered
	// copy again adds nothing new.
	ID uint64
	// Seq orders the dead letters as the log received them, which is the order of
	// lift.dead; the log sets it.
	Seq        uint64
	At         time.Time // when it was dead-lettered
	RoutingKey string
	Reason     string
	// UserID is the event's user_id when the body names one, so a user's data can be
	// found (and erased) here too.
	UserID string
	Body   []byte
}

// DeadLetterSink stores dead letters. Storing one twice is harmless: readers collapse
// equal IDs.
type DeadLetterSink interface {
	InsertDeadLetters(ctx context.Context, letters []DeadLetter) error
}

// NewDeadLetter fills in ID and UserID.
func NewDeadLetter(at time.Time, routingKey, reason string, body []byte) DeadLetter {
	h := sha256.New()
	var ts [8]byte
	binary.BigEndian.PutUint64(ts[:], uint64(at.Unix()))
	for _, part := range [][]byte{ts[:], []byte(routingKey), {0}, []byte(reason), {0}, body} {
		h.Write(part)
	}
	d := DeadLetter{ID: binary.BigEndian.Uint64(h.Sum(nil)), At: at.UTC().Truncate(time.Second), RoutingKey: routingKey, Reason: reason, Body: body}
	var who struct {
		UserID any `json:"user_id"`
	}
	if json.Unmarshal(body, &who) == nil {
		if s, ok := who.UserID.(string); ok {
			d.UserID = s
		}
	}
	return d
}

// FeedFilter narrows the dashboard's live view of recent events and exposures; the
// zero value means "the newest of everything".
type FeedFilter struct {
	Type, UserID, Experiment string
	Limit                    int // default 50
}
