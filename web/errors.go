package web

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/liftlab/lift/ingest"
	"github.com/liftlab/lift/internal/derrors"
)

// errorBody is every JSON error lift answers, outside OFREP (which has its own shape).
type errorBody struct {
	Error  string               `json:"error"`
	Fields []derrors.FieldError `json:"fields,omitempty"`
	// Accepted and Rejected answer a batch of events that were all invalid, in the
	// shape of the 202 that would have listed them.
	Accepted *int               `json:"accepted,omitempty"`
	Rejected []ingest.Rejection `json:"rejected,omitempty"`
}

// rejectedError is a POST /v1/events whose every event was invalid: a 400 listing them.
type rejectedError []ingest.Rejection

func (e rejectedError) Error() string { return fmt.Sprintf("all %d events rejected", len(e)) }

// badRequest is a request that is wrong in itself (as opposed to an invalid document,
// which answers 422): a 400 that names the offending field.
func badRequest(field, message string) error { return derrors.BadRequest(field, message) }

// statusOf maps an error to its HTTP status, by derrors' one table (which the
// dashboard's error pages use too), and to the body that tells an API client why.
func statusOf(err error) (int, errorBody) {
	var (
		httpErr  *echo.HTTPError
		valErr   *derrors.ValidationError
		conflict *derrors.ConflictError
		rejected rejectedError
	)
	status := derrors.HTTPStatus(err)
	switch {
	case errors.As(err, &rejected):
		none := 0
		return http.StatusBadRequest, errorBody{Error: "every event was rejected", Accepted: &none, Rejected: rejected}
	case errors.As(err, &httpErr):
		msg := http.StatusText(httpErr.Code)
		if s, ok := httpErr.Message.(string); ok {
			msg = s
		}
		return httpErr.Code, errorBody{Error: msg}
	case errors.As(err, &valErr):
		msg := "validation failed"
		if errors.Is(valErr, derrors.ErrBadRequest) {
			msg = valErr.Error() // "field: message", as a request has no form to show fields in
		}
		return status, errorBody{Error: msg, Fields: valErr.Fields}
	case errors.As(err, &conflict):
		return status, errorBody{Error: conflict.Reason}
	}
	switch kind := derrors.KindOf(err); kind {
	case nil:
		return status, errorBody{Error: "internal error"}
	case derrors.ErrMalformed:
		return status, errorBody{Error: "malformed JSON body"}
	case derrors.ErrConflict:
		return status, errorBody{Error: "already exists"}
	default:
		return status, errorBody{Error: kind.Error()}
	}
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
