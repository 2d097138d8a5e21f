package web

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/liftlab/lift/experiments"
	"github.com/liftlab/lift/ingest"
	"github.com/liftlab/lift/web/auth"
)

// errorBody is every JSON error lift answers, outside OFREP (which has its own shape).
type errorBody struct {
	Error  string                   `json:"error"`
	Fields []experiments.FieldError `json:"fields,omitempty"`
	// Accepted and Rejected answer a batch of events that were all invalid, in the
	// shape of the 202 that would have listed them.
	Accepted *int               `json:"accepted,omitempty"`
	Rejected []ingest.Rejection `json:"rejected,omitempty"`
}

// rejectedError is a POST /v1/events whose every event was invalid: a 400 listing them.
type rejectedError []ingest.Rejection

func (e rejectedError) Error() string { return fmt.Sprintf("all %d events rejected", len(e)) }

// requestError is a malformed request envelope (as opposed to an invalid document,
// which answers 422): a 400 that names the offending field.
type requestError struct{ err *experiments.ValidationError }

func badRequest(field, message string) error {
	return requestError{&experiments.ValidationError{Fields: []experiments.FieldError{{Field: field, Message: message}}}}
}

func (e requestError) Error() string { return fieldsText(e.err.Fields) }

// statusOf maps an error to its HTTP status: the one place that does.
func statusOf(err error) (int, errorBody) {
	var (
		httpErr  *echo.HTTPError
		valErr   *experiments.ValidationError
		reqErr   requestError
		conflict *experiments.ConflictError
		rejected rejectedError
	)
	switch {
	case errors.As(err, &rejected):
		none := 0
		return http.StatusBadRequest, errorBody{Error: "every event was rejected", Accepted: &none, Rejected: rejected}
	case errors.As(err, &reqErr):
		return http.StatusBadRequest, errorBody{Error: reqErr.Error(), Fields: reqErr.err.Fields}
	case errors.As(err, &httpErr):
		msg := http.StatusText(httpErr.Code)
		if s, ok := httpErr.Message.(string); ok {
			msg = s
		}
		return httpErr.Code, errorBody{Error: msg}
	case errors.Is(err, experiments.ErrMalformed):
		return http.StatusBadRequest, errorBody{Error: "malformed JSON body"}
	case errors.As(err, &valErr):
		return http.StatusUnprocessableEntity, errorBody{Error: "validation failed", Fields: valErr.Fields}
	case errors.As(err, &conflict):
		return http.StatusConflict, errorBody{Error: conflict.Reason}
	case errors.Is(err, experiments.ErrConflict), errors.Is(err, auth.ErrConflict):
		return http.StatusConflict, errorBody{Error: "already exists"}
	case errors.Is(err, experiments.ErrNotFound), errors.Is(err, auth.ErrNotFound):
		return http.StatusNotFound, errorBody{Error: "not found"}
	}
	return http.StatusInternalServerError, errorBody{Error: "internal error"}
}

func errorHandler(log *slog.Logger) echo.HTTPErrorHandler {
	return func(err error, c echo.Context) {
		if c.Response().Committed {
			return
		}
		status, body := statusOf(err)
		if status >= 500 {
			log.ErrorContext(c.Request().Context(), "request failed", "err", err, "method", c.Request().Method, "path", c.Path())
		}
		h := c.Response().Header()
		if (status == http.StatusServiceUnavailable || status == http.StatusTooManyRequests) && h.Get("Retry-After") == "" {
			h.Set("Retry-After", "1")
		}
		if c.Request().Method == http.MethodHead {
			_ = c.NoContent(status)
			return
		}
		_ = c.JSON(status, body)
	}
}
