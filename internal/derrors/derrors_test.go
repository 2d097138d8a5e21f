package derrors_test

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/liftlab/lift/internal/derrors"
)

func TestHTTPStatus(t *testing.T) {
	for _, tt := range []struct {
		name string
		err  error
		kind error
		want int
	}{
		{"not found, wrapped", fmt.Errorf("pgstore: experiment %q: %w", "e1", derrors.ErrNotFound), derrors.ErrNotFound, http.StatusNotFound},
		{"conflict", derrors.ErrConflict, derrors.ErrConflict, http.StatusConflict},
		{"conflict with a reason", &derrors.ConflictError{Reason: "taken"}, derrors.ErrConflict, http.StatusConflict},
		{"invalid document", derrors.Invalid("key", "is required"), derrors.ErrInvalid, http.StatusUnprocessableEntity},
		{"validator with problems", func() error { v := &derrors.ValidationError{}; v.Add("a", "is %s", "bad"); return v.Err() }(), derrors.ErrInvalid, http.StatusUnprocessableEntity},
		{"bad request", derrors.BadRequest("limit", "must be an integer"), derrors.ErrBadRequest, http.StatusBadRequest},
		{"bad request, wrapped", fmt.Errorf("bandit: %w", derrors.BadRequest("arms", "need 2")), derrors.ErrBadRequest, http.StatusBadRequest},
		{"malformed", derrors.ErrMalformed, derrors.ErrMalformed, http.StatusBadRequest},
		{"forbidden", derrors.ErrForbidden, derrors.ErrForbidden, http.StatusForbidden},
		{"unavailable", fmt.Errorf("event broker %w: not connected", derrors.ErrUnavailable), derrors.ErrUnavailable, http.StatusServiceUnavailable},
		{"no kind", errors.New("disk on fire"), nil, http.StatusInternalServerError},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := derrors.HTTPStatus(tt.err); got != tt.want {
				t.Errorf("HTTPStatus(%v) = %d, want %d", tt.err, got, tt.want)
			}
			if got := derrors.KindOf(tt.err); got != tt.kind {
				t.Errorf("KindOf(%v) = %v, want %v", tt.err, got, tt.kind)
			}
		})
	}
}

func TestValidationError(t *testing.T) {
	v := &derrors.ValidationError{}
	if v.Err() != nil {
		t.Fatal("Err() of no problems is not nil")
	}
	v.Add("variants[1].weight", "must be between 0 and 1, got %v", 1.5)
	v.Add("key", "is required")
	err := v.Err()
	if want := "variants[1].weight: must be between 0 and 1, got 1.5; key: is required"; err.Error() != want {
		t.Errorf("Error() = %q, want %q", err.Error(), want)
	}
	if !errors.Is(err, derrors.ErrInvalid) || errors.Is(err, derrors.ErrBadRequest) {
		t.Errorf("kind of a ValidationError without Kind: want ErrInvalid only")
	}
	if got := (&derrors.ConflictError{Reason: "segment \"a\" has no draft"}).Error(); got != `conflict: segment "a" has no draft` {
		t.Errorf("ConflictError.Error() = %q", got)
	}
}
