// Package derrors (domain errors) is lift's one error vocabulary: the kinds of
// failure every domain reports, and the one table from kind to HTTP status that the
// management API and the dashboard both answer with (modelled on golang/pkgsite's
// internal/derrors).
//
// A kind is a sentinel error. A domain returns it wrapped with what failed, and
// callers test for it with errors.Is:
//
//	return fmt.Errorf("pgstore: experiment %q: %w", key, derrors.ErrNotFound)
//
// Two types carry what the user must see: a *ValidationError lists the invalid fields
// of a document or a request (its kind is ErrInvalid, or ErrBadRequest), and a
// *ConflictError says why a change clashes with the current state (ErrConflict).
// Errors of no kind are failures of lift itself, and HTTPStatus answers 500 for them.
// Web handlers return errors rather than writing them; no domain translates another's
// errors.
//
// derrors imports only the standard library (errors, fmt, strings), so bandit and the
// condition evaluator, which may import nothing else, can use it too.
package derrors

import (
	"errors"
	"fmt"
	"strings"
)

// The kinds.
var (
	// ErrNotFound means the thing asked for does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict means the change clashes with existing state: a key that is taken,
	// a document that is still referenced, a transition the current state does not
	// allow.
	ErrConflict = errors.New("conflict")
	// ErrInvalid means a document or value breaks the rules; a *ValidationError of
	// this kind names the fields.
	ErrInvalid = errors.New("invalid")
	// ErrBadRequest means the request itself is wrong: a parameter, a path element,
	// the envelope around the documents; a *ValidationError of this kind names them.
	ErrBadRequest = errors.New("bad request")
	// ErrMalformed means a body is not the JSON it should be.
	ErrMalformed = errors.New("malformed JSON")
	// ErrForbidden means the caller may not do this.
	ErrForbidden = errors.New("forbidden")
	// ErrUnavailable means a service lift depends on could not do its part: nothing
	// happened, and the same request may succeed later.
	ErrUnavailable = errors.New("unavailable")
)

// statuses is the one table from kind to HTTP status. Every error has at most one
// kind, so the order does not matter. The statuses are numbers rather than
// net/http's names so that the pure packages importing derrors do not pull in the
// HTTP stack.
var statuses = []struct {
	kind   error
	status int
}{
	{ErrBadRequest, 400},  // Bad Request
	{ErrMalformed, 400},   // Bad Request
	{ErrForbidden, 403},   // Forbidden
	{ErrNotFound, 404},    // Not Found
	{ErrConflict, 409},    // Conflict
	{ErrInvalid, 422},     // Unprocessable Entity
	{ErrUnavailable, 503}, // Service Unavailable
}

// statusInternal is the status of an error of no kind: a failure of lift itself.
const statusInternal = 500 // Internal Server Error

// KindOf returns err's kind, one of the Err* sentinels above, or nil for an error of
// no kind.
func KindOf(err error) error {
	for _, s := range statuses {
		if errors.Is(err, s.kind) {
			return s.kind
		}
	}
	return nil
}

// HTTPStatus returns the HTTP status of err's kind, and 500 (Internal Server Error)
// for an error of no kind.
func HTTPStatus(err error) int {
	for _, s := range statuses {
		if errors.Is(err, s.kind) {
			return s.status
		}
	}
	return statusInternal
}

// FieldError names one invalid field and what is wrong with it. Field is the path of
// the field as the client wrote it ("variants[1].weight", "properties.experiment").
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// ValidationError lists every problem found in a document or a request, so that a
// client can fix them all in one round trip.
type ValidationError struct {
	Fields []FieldError `json:"fields"`
	// Kind is ErrInvalid (also when nil) for a document or value that breaks the
	// rules, or ErrBadRequest for a request that is wrong in itself.
	Kind error `json:"-"`
}

// Invalid returns a *ValidationError of kind ErrInvalid for one field.
func Invalid(field, message string) *ValidationError {
	return &ValidationError{Fields: []FieldError{{Field: field, Message: message}}}
}

// BadRequest returns a *ValidationError of kind ErrBadRequest for one field.
func BadRequest(field, message string) *ValidationError {
	return &ValidationError{Fields: []FieldError{{Field: field, Message: message}}, Kind: ErrBadRequest}
}

// Error lists the fields: "field: message; field: message".
func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.Field + ": " + f.Message
	}
	return strings.Join(parts, "; ")
}

// Unwrap returns the error's kind, so errors.Is(err, ErrInvalid) matches.
func (e *ValidationError) Unwrap() error {
	if e.Kind == nil {
		return ErrInvalid
	}
	return e.Kind
}

// Add records a problem with a field.
func (e *ValidationError) Add(field, format string, args ...any) {
	e.Fields = append(e.Fields, FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
}

// Err returns nil when no problem was recorded, so validators can end with
// `return v.Err()`.
func (e *ValidationError) Err() error {
	if len(e.Fields) == 0 {
		return nil
	}
	return e
}

// ConflictError is an ErrConflict with the reason to show the user.
type ConflictError struct{ Reason string }

func (e *ConflictError) Error() string { return "conflict: " + e.Reason }

// Unwrap lets errors.Is(err, ErrConflict) match.
func (e *ConflictError) Unwrap() error { return ErrConflict }
