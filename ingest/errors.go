package ingest

import (
	"errors"
	"fmt"
	"strings"
)

var (
	// ErrMalformed means a request or message body is not the JSON it should be.
	ErrMalformed = errors.New("malformed JSON")
	// ErrUnavailable means the broker could not confirm a publish (unreachable,
	// blocked by a resource alarm, or it nacked): nothing may be reported as accepted.
	ErrUnavailable = errors.New("event broker unavailable")
	// ErrNotFound means the event type does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict means the event type (or that version of it) exists already.
	ErrConflict = errors.New("conflict")
)

// FieldError names one invalid field of an event and what is wrong with it.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// ValidationError lists every problem found in one event.
type ValidationError struct {
	Fields []FieldError
}

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.Field + ": " + f.Message
	}
	return strings.Join(parts, "; ")
}

// Reason is a short, bounded label for metrics: the first invalid field.
func (e *ValidationError) Reason() string {
	if len(e.Fields) == 0 {
		return "unknown"
	}
	return e.Fields[0].Field
}

// Add records a problem with a field.
func (e *ValidationError) Add(field, format string, args ...any) { e.add(field, format, args...) }

func (e *ValidationError) add(field, format string, args ...any) {
	e.Fields = append(e.Fields, FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
}

// Err returns nil when no problem was recorded.
func (e *ValidationError) Err() error { return e.err() }

func (e *ValidationError) err() error {
	if len(e.Fields) == 0 {
		return nil
	}
	return e
}

// reasonOf is the metrics label of a rejection.
func reasonOf(err error) string {
	var v *ValidationError
	if errors.As(err, &v) {
		return v.Reason()
	}
	return "malformed"
}
