package web

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/liftlab/lift/ingest/gdpr"
	"github.com/liftlab/lift/internal/derrors"
)

// GDPR is the management API's view of erasure and export (docs/privacy.md).
type GDPR interface {
	Request(ctx context.Context, actor, userID string, include []string) (gdpr.Job, []gdpr.Link, error)
	Export(ctx context.Context, actor, userID string, include []string) (gdpr.Export, error)
	Job(ctx context.Context, id string) (gdpr.Job, error)
	List(ctx context.Context, limit int) ([]gdpr.Job, error)
}

type jobResponse struct {
	gdpr.Job
	URL string `json:"url"`
}

// erasureResponse answers an erasure request: the job, and the linked ids it does
// not follow until an operator confirms them (include=).
type erasureResponse struct {
	jobResponse
	UnconfirmedLinks []gdpr.Link `json:"unconfirmed_links"`
}

// includeParam is the linked ids the operator confirms: include=<id>, repeated.
func includeParam(c echo.Context) ([]string, error) {
	ids := c.QueryParams()["include"]
	for _, id := range ids {
		if id == "" {
			return nil, badRequest("include", "must name a linked id; leave it out to confirm none")
		}
	}
	return ids, nil
}

func jobURL(id string) string { return "/api/v1/erasures/" + url.PathEscape(id) }

// userParam is the user id of the path, which may hold any character (escaped).
// Echo matches routes on the escaped path only when the request needs it (RawPath
// set, e.g. for %2F), and then leaves the parameter escaped.
func userParam(c echo.Context) (string, error) {
	if c.Request().URL.RawPath == "" {
		return c.Param("id"), nil
	}
	id, err := url.PathUnescape(c.Param("id"))
	if err != nil {
		return "", badRequest("user_id", "is not a valid escaped path segment")
	}
	return id, nil
}

// eraseUser is DELETE /api/v1/users/{id}[?include=<linked id>…]: 202 with the job,
// which GET on its url shows, and the linked ids not followed; a second request
// while one is open for the user returns that one.
func (s *server) eraseUser(c echo.Context) error {
	id, err := userParam(c)
	if err != nil {
		return err
	}
	include, err := includeParam(c)
	if err != nil {
		return err
	}
	j, unconfirmed, err := s.GDPR.Request(c.Request().Context(), actor(c), id, include)
	if err != nil {
		return err
	}
	if unconfirmed == nil {
		unconfirmed = []gdpr.Link{}
	}
	c.Response().Header().Set("Location", jobURL(j.ID))
	return c.JSON(http.StatusAccepted, erasureResponse{jobResponse{Job: j, URL: jobURL(j.ID)}, unconfirmed})
}

// exportUser is GET /api/v1/users/{id}/export[?include=<linked id>…].
func (s *server) exportUser(c echo.Context) error {
	id, err := userParam(c)
	if err != nil {
		return err
	}
	include, err := includeParam(c)
	if err != nil {
		return err
	}
	x, err := s.GDPR.Export(c.Request().Context(), actor(c), id, include)
	if err != nil {
		return err
	}
	c.Response().Header().Set("Content-Disposition", `attachment; filename="lift-export.json"`)
	return c.JSON(http.StatusOK, x)
}

func (s *server) erasureJob(c echo.Context) error {
	j, err := s.GDPR.Job(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, jobResponse{Job: j, URL: jobURL(j.ID)})
}

func (s *server) erasureJobs(c echo.Context) error {
	limit := 100
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 || n > 1000 {
			return badRequest("limit", "must be an integer from 1 to 1000")
		}
		limit = n
	}
	jobs, err := s.GDPR.List(c.Request().Context(), limit)
	if err != nil {
		return err
	}
	items := make([]jobResponse, len(jobs))
	for i, j := range jobs {
		items[i] = jobResponse{Job: j, URL: jobURL(j.ID)}
	}
	return c.JSON(http.StatusOK, map[string]any{"items": items})
}

// RetentionManager is the management API's view of retention.
type RetentionManager interface {
	Overview(ctx context.Context) (gdpr.Overview, error)
	SetPolicy(ctx context.Context, actor, table string, months int) error
}

func (s *server) retention(c echo.Context) error {
	o, err := s.Retention.Overview(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, o)
}

// setRetention is PUT /api/v1/retention/{table} {"months": n}; 0 or null returns
// the table to the default. Unknown tables are 404.
func (s *server) setRetention(c echo.Context) error {
	var req struct {
		Months *int `json:"months"`
	}
	body, err := readBody(c)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return decodeRequestError(err, nil, `{"months":6}`)
	}
	ctx := c.Request().Context()
	o, err := s.Retention.Overview(ctx)
	if err != nil {
		return err
	}
	table := c.Param("table")
	if !slices.ContainsFunc(o.Tables, func(t gdpr.TableRetention) bool { return t.Table == table }) {
		return derrors.ErrNotFound
	}
	months := 0
	if req.Months != nil {
		months = *req.Months
	}
	if err := s.Retention.SetPolicy(ctx, actor(c), table, months); err != nil {
		return err
	}
	return s.retention(c)
}
