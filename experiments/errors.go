package experiments

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors shared by the domain and its adapters; the web layer maps them to
// HTTP statuses in one place.
var (
	// ErrNotFound means the document with the requested key does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict means the change clashes with existing state (duplicate key,
	// document still referenced, lifecycle transition not allowed).
	ErrConflict = errors.New("conflict")
)

// FieldError names one invalid field and what is wrong with it.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// ValidationError lists every problem found in a document, so a client can fix them
// all in one round trip.
type ValidationError struct {
	Fields []FieldError `json:"fields"`
}

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.Field + ": " + f.Message
	}
	return "invalid document: " + strings.Join(parts, "; ")
}

// add records a problem with a field.
func (e *ValidationError) add(field, format string, args ...any) {
	e.Fields = append(e.Fields, FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
}

// err returns nil when no problem was recorded, so validators can end with `return v.err()`.
func (e *ValidationError) err() error {
	if len(e.Fields) == 0 {
		return nil
	}
	return e
}

// ConflictError carries the reason for an ErrConflict to show to the user.
type ConflictError struct{ Reason string }

func (e *ConflictError) Error() string { return "conflict: " + e.Reason }

// Unwrap lets errors.Is(err, ErrConflict) match.
func (e *ConflictError) Unwrap() error { return ErrConflict }
