package web

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/liftlab/lift/experiments"
	"github.com/liftlab/lift/internal/derrors"
	"github.com/liftlab/lift/web/auth"
)

// docHandlers serve JSON CRUD for one kind of configuration document.
type docHandlers struct {
	s    *server
	kind experiments.Kind
}

type listResponse struct {
	Items []json.RawMessage `json:"items"`
}

func (h docHandlers) list(c echo.Context) error {
	docs, err := h.s.Manager.List(c.Request().Context(), h.kind)
	if err != nil {
		return err
	}
	if docs == nil {
		docs = []json.RawMessage{}
	}
	return c.JSON(http.StatusOK, listResponse{Items: docs})
}

func (h docHandlers) get(c echo.Context) error {
	doc, err := h.s.Manager.Get(c.Request().Context(), h.kind, c.Param("key"))
	if err != nil {
		return err
	}
	return c.JSONBlob(http.StatusOK, doc)
}

func (h docHandlers) create(c echo.Context) error {
	body, err := readBody(c)
	if err != nil {
		return err
	}
	doc, err := h.s.Manager.Create(c.Request().Context(), actor(c), h.kind, body)
	if err != nil {
		return err
	}
	return c.JSONBlob(http.StatusCreated, doc)
}

func (h docHandlers) replace(c echo.Context) error {
	body, err := readBody(c)
	if err != nil {
		return err
	}
	doc, err := h.s.Manager.Replace(c.Request().Context(), actor(c), h.kind, c.Param("key"), body)
	if err != nil {
		return err
	}
	return c.JSONBlob(http.StatusOK, doc)
}

func (h docHandlers) delete(c echo.Context) error {
	if err := h.s.Manager.Delete(c.Request().Context(), actor(c), h.kind, c.Param("key")); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// transition serves POST /api/v1/experiments/{key}/start|pause|stop.
func (s *server) transition(c echo.Context) error {
	doc, err := s.Manager.Transition(c.Request().Context(), actor(c), c.Param("key"), c.Param("action"))
	if err != nil {
		return err
	}
	return c.JSONBlob(http.StatusOK, doc)
}

func (s *server) audit(c echo.Context) error {
	q := experiments.AuditQuery{Entity: experiments.Kind(c.QueryParam("entity")), Key: c.QueryParam("key")}
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return badRequest("limit", "must be a positive integer")
		}
		q.Limit = n
	}
	entries, err := s.Manager.Audit(c.Request().Context(), q)
	if err != nil {
		return err
	}
	if entries == nil {
		entries = []experiments.AuditEntry{}
	}
	return c.JSON(http.StatusOK, map[string]any{"items": entries})
}

func (s *server) listKeys(c echo.Context) error {
	keys, err := s.KeyStore.ListKeys(c.Request().Context())
	if err != nil {
		return err
	}
	if keys == nil {
		keys = []auth.Key{}
	}
	return c.JSON(http.StatusOK, map[string]any{"items": keys})
}

// createKey returns the new secret once; only its hash is stored.
func (s *server) createKey(c echo.Context) error {
	var req struct {
		Name    string   `json:"name"`
		Kind    string   `json:"kind"`
		Origins []string `json:"allowed_origins"`
	}
	body, err := readBody(c)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return decodeRequestError(err, map[string]string{"allowed_origins": "an array of origins (strings)"}, `{"kind":"client","name":"my-site"}`)
	}
	kind, err := auth.ParseKind(req.Kind)
	if err != nil {
		return derrors.Invalid("kind", err.Error())
	}
	origins, err := auth.ParseOrigins(req.Origins)
	if err != nil {
		return derrors.Invalid("allowed_origins", err.Error())
	}
	secret, k, err := auth.CreateKey(c.Request().Context(), s.KeyStore, req.Name, kind, actor(c), origins...)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, map[string]any{"key": secret, "info": k})
}

func (s *server) revokeKey(c echo.Context) error {
	id, err := keyID(c)
	if err != nil {
		return err
	}
	if err := s.KeyStore.RevokeKey(c.Request().Context(), id, actor(c)); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func keyID(c echo.Context) (int64, error) {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil {
		return 0, badRequest("id", "must be a key id")
	}
	return id, nil
}

// setKeyOrigins is PUT /api/v1/keys/{id}/origins {"allowed_origins": [...]}: the
// browser origins the key may be used from ([] for any).
func (s *server) setKeyOrigins(c echo.Context) error {
	id, err := keyID(c)
	if err != nil {
		return err
	}
	var req struct {
		Origins *[]string `json:"allowed_origins"`
	}
	body, err := readBody(c)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return decodeRequestError(err, map[string]string{"allowed_origins": "an array of origins (strings)"}, `{"allowed_origins":["https://shop.example"]}`)
	}
	if req.Origins == nil {
		return derrors.Invalid("allowed_origins", "is required ([] allows any origin)")
	}
	origins, err := auth.ParseOrigins(*req.Origins)
	if err != nil {
		return derrors.Invalid("allowed_origins", err.Error())
	}
	k, err := s.KeyStore.SetOrigins(c.Request().Context(), id, origins, actor(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, k)
}

// rotateKey is POST /api/v1/keys/{id}/rotate {"grace":"24h"}: a new secret that works
// at once, while the old one keeps working for the grace period (default 24 h).
func (s *server) rotateKey(c echo.Context) error {
	id, err := keyID(c)
	if err != nil {
		return err
	}
	var req struct {
		Grace string `json:"grace"`
	}
	body, err := readBody(c)
	if err != nil {
		return err
	}
	if len(body) > 0 {
		if err := json.Unmarshal(body, &req); err != nil {
			return decodeRequestError(err, nil, `{"grace":"24h"}`)
		}
	}
	grace := 24 * time.Hour
	if req.Grace != "" {
		if grace, err = time.ParseDuration(req.Grace); err != nil {
			return derrors.Invalid("grace", "must be a duration such as 24h")
		}
	}
	if grace <= 0 || grace > auth.MaxRotationGrace {
		return derrors.Invalid("grace", "must be between 1s and 720h")
	}
	secret, k, err := auth.RotateKey(c.Request().Context(), s.KeyStore, id, grace, actor(c))
	if errors.Is(err, derrors.ErrConflict) {
		return &derrors.ConflictError{Reason: "key already rotated: rotate its successor instead"}
	}
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, map[string]any{"key": secret, "info": k, "previous": id, "grace": grace.String()})
}
