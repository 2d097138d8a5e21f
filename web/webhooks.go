package web

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/liftlab/lift/internal/derrors"
	"github.com/liftlab/lift/segments/webhooks"
	"github.com/liftlab/lift/web/auth"
)

// WebhookManager configures segment webhooks and shows their dead letters.
type WebhookManager interface {
	CreateWebhook(ctx context.Context, actor string, w webhooks.Webhook) (webhooks.Webhook, error)
	UpdateWebhook(ctx context.Context, actor, key string, w webhooks.Webhook) (webhooks.Webhook, error)
	DeleteWebhook(ctx context.Context, actor, key string) error
	GetWebhook(ctx context.Context, key string) (webhooks.Webhook, error)
	ListWebhooks(ctx context.Context) ([]webhooks.Webhook, error)
	DeadLetters(ctx context.Context, key string, limit int) ([]webhooks.DeadLetter, error)
	Redeliver(ctx context.Context, actor, key string) (int64, error)
}

func (s *server) registerWebhooks(api *echo.Group) {
	api.GET("/webhooks", s.listWebhooks)
	api.POST("/webhooks", s.createWebhook)
	api.GET("/webhooks/:key", s.getWebhook)
	api.PUT("/webhooks/:key", s.updateWebhook)
	api.DELETE("/webhooks/:key", s.deleteWebhook)
	api.GET("/webhooks/:key/dead", s.deadLetters)
	api.POST("/webhooks/:key/dead/redeliver", s.redeliver)
}

// decodeWebhook parses a webhook document strictly, so a misspelt field is reported.
func decodeWebhook(c echo.Context) (webhooks.Webhook, error) {
	body, err := readBody(c)
	if err != nil {
		return webhooks.Webhook{}, err
	}
	var w webhooks.Webhook
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		var typeErr *json.UnmarshalTypeError
		switch {
		case errors.As(err, &typeErr) && typeErr.Field != "":
			return w, derrors.Invalid(typeErr.Field, "must be "+expectedJSON(typeErr.Type))
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
			return w, derrors.Invalid(field, "unknown field")
		}
		return w, derrors.ErrMalformed
	}
	return w, nil
}

func (s *server) listWebhooks(c echo.Context) error {
	ws, err := s.Webhooks.ListWebhooks(c.Request().Context())
	if err != nil {
		return err
	}
	if ws == nil {
		ws = []webhooks.Webhook{}
	}
	return c.JSON(http.StatusOK, map[string]any{"items": ws})
}

// createWebhook answers the secret only when lift generated it: this is the one
// chance to read it.
func (s *server) createWebhook(c echo.Context) error {
	w, err := decodeWebhook(c)
	if err != nil {
		return err
	}
	created, err := s.Webhooks.CreateWebhook(c.Request().Context(), actor(c), w)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, created)
}

func (s *server) getWebhook(c echo.Context) error {
	w, err := s.Webhooks.GetWebhook(c.Request().Context(), c.Param("key"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, w)
}

func (s *server) updateWebhook(c echo.Context) error {
	w, err := decodeWebhook(c)
	if err != nil {
		return err
	}
	updated, err := s.Webhooks.UpdateWebhook(c.Request().Context(), actor(c), c.Param("key"), w)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, updated)
}

func (s *server) deleteWebhook(c echo.Context) error {
	if err := s.Webhooks.DeleteWebhook(c.Request().Context(), actor(c), c.Param("key")); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// deadLetters serves GET /api/v1/webhooks/{key}/dead?limit=N (default 100): the
// changes whose delivery was given up, oldest first. Viewers see only that delivery
// failed; editors, admins and server keys why (webhooks.ShownReason).
func (s *server) deadLetters(c echo.Context) error {
	limit := 100
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 || n > 10_000 {
			return badRequest("limit", "must be an integer from 1 to 10000")
		}
		limit = n
	}
	dls, err := s.Webhooks.DeadLetters(c.Request().Context(), c.Param("key"), limit)
	if err != nil {
		return err
	}
	if dls == nil {
		dls = []webhooks.DeadLetter{}
	}
	u, isUser := c.Get(userContext).(auth.User)
	detailed := !isUser || u.Role.Allows(auth.Editor)
	for i := range dls {
		dls[i].LastError = webhooks.ShownReason(dls[i].LastError, detailed)
	}
	return c.JSON(http.StatusOK, map[string]any{"items": dls})
}

// redeliver serves POST /api/v1/webhooks/{key}/dead/redeliver: every dead letter is
// due again, with a fresh count of attempts.
func (s *server) redeliver(c echo.Context) error {
	n, err := s.Webhooks.Redeliver(c.Request().Context(), actor(c), c.Param("key"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]int64{"requeued": n})
}
