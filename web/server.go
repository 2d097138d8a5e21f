// Package web serves lift's HTTP interfaces: the decision API for clients, OFREP, the
// management API, health and metrics.
package web

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/liftlab/lift/experiments"
	"github.com/liftlab/lift/web/auth"
)

// Snapshots gives the current decision snapshot.
type Snapshots interface {
	Snapshot() *experiments.Snapshot
}

// KeyLookup finds the API key a request presents.
type KeyLookup interface {
	Lookup(secret string) (auth.Key, bool)
}

// Manager is the management API's view of the configuration service.
type Manager interface {
	Create(ctx context.Context, actor string, kind experiments.Kind, body []byte) (json.RawMessage, error)
	Replace(ctx context.Context, actor string, kind experiments.Kind, key string, body []byte) (json.RawMessage, error)
	Transition(ctx context.Context, actor, key, action string) (json.RawMessage, error)
	Delete(ctx context.Context, actor string, kind experiments.Kind, key string) error
	Get(ctx context.Context, kind experiments.Kind, key string) (json.RawMessage, error)
	List(ctx context.Context, kind experiments.Kind) ([]json.RawMessage, error)
	Audit(ctx context.Context, q experiments.AuditQuery) ([]experiments.AuditEntry, error)
}

// Deps is what the server needs from the rest of lift.
type Deps struct {
	Log       *slog.Logger
	Snapshots Snapshots
	Keys      KeyLookup
	Manager   Manager
	KeyStore  auth.KeyStore
	// Ready reports the health of each dependency by name (nil error = healthy).
	Ready func(ctx context.Context) map[string]error
	// Registry receives the server's metrics; /metrics serves it.
	Registry     *prometheus.Registry
	MaxBodyBytes int64
}

// New builds the HTTP handler.
func New(d Deps) *echo.Echo {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = errorHandler(d.Log)
	e.Use(middleware.Recover())
	e.Use(middleware.BodyLimit(strconv.FormatInt(d.MaxBodyBytes, 10) + "B"))

	m := newMetrics(d.Registry)
	s := &server{Deps: d, metrics: m}

	e.GET("/healthz", func(c echo.Context) error { return c.JSON(http.StatusOK, map[string]string{"status": "ok"}) })
	e.GET("/readyz", s.readyz)
	e.GET("/metrics", echo.WrapHandler(promhttp.HandlerFor(d.Registry, promhttp.HandlerOpts{})))

	client := e.Group("", s.requireKey(auth.ClientKey, auth.ServerKey))
	client.POST("/v1/decide", s.decide)
	client.POST("/ofrep/v1/evaluate/flags/:key", s.ofrepOne)
	client.POST("/ofrep/v1/evaluate/flags", s.ofrepBulk)

	api := e.Group("/api/v1", s.requireKey(auth.ServerKey))
	for path, kind := range map[string]experiments.Kind{
		"experiments":  experiments.KindExperiment,
		"flags":        experiments.KindFlag,
		"segments":     experiments.KindSegment,
		"saved-groups": experiments.KindSavedGroup,
	} {
		h := docHandlers{s: s, kind: kind}
		api.GET("/"+path, h.list)
		api.POST("/"+path, h.create)
		api.GET("/"+path+"/:key", h.get)
		api.PUT("/"+path+"/:key", h.replace)
		api.DELETE("/"+path+"/:key", h.delete)
	}
	api.POST("/experiments/:key/:action", s.transition)
	api.GET("/audit", s.audit)
	api.GET("/keys", s.listKeys)
	api.POST("/keys", s.createKey)
	api.DELETE("/keys/:id", s.revokeKey)
	return e
}

type server struct {
	Deps
	metrics *metrics
}
