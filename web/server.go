// Package web serves lift's HTTP interfaces: the decision API for clients, OFREP, the
// management API, health and metrics.
package web

import (
	"context"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/liftlab/lift/experiments"
	"github.com/liftlab/lift/ingest"
	"github.com/liftlab/lift/web/auth"
	"github.com/liftlab/lift/web/session"
)

// Snapshots gives the current decision snapshot.
type Snapshots interface {
	Snapshot() *experiments.Snapshot
}

// KeyLookup finds the API key a request presents.
type KeyLookup interface {
	Lookup(secret string) (auth.Key, bool)
}

// Deps is what the server needs from the rest of lift.
type Deps struct {
	Log       *slog.Logger
	Snapshots Snapshots
	Keys      KeyLookup
	Manager   experiments.Manager
	KeyStore  auth.KeyStore
	// Ready reports the health of each dependency by name (nil error = healthy). An
	// error degrades /readyz; one of kind derrors.ErrUnavailable makes it answer 503.
	Ready func(ctx context.Context) map[string]error
	// Registry receives the server's metrics; /metrics serves it, unless AdminMetrics
	// says the admin listener (Admin, LIFT_ADMIN_ADDR) does, and only it.
	Registry     *prometheus.Registry
	AdminMetrics bool
	MaxBodyBytes int64
	// Sessions, when set, lets signed-in dashboard users call /api/v1 with their cookie.
	Sessions *session.Manager
	// Dashboard, when set, adds the web dashboard's routes.
	Dashboard interface{ Register(e *echo.Echo) }
	// Events, when set, serves POST /v1/events (the collector); EventMetrics must
	// then be set too.
	Events       EventPublisher
	EventMetrics *ingest.Metrics
	// Exposures, when set, receives an exposure per experiment decision of
	// /v1/decide (unless the request says "track": false).
	Exposures ExposureLogger
	// Results, when set, serves GET /api/v1/experiments/{key}/results.
	Results ResultsReader
	// Bandits, when set, serves GET /api/v1/experiments/{key}/bandit.
	Bandits BanditReporter
	// SegmentStats, when set, serves GET /api/v1/segments/{key}/stats.
	SegmentStats SegmentStats
	// Webhooks, when set, serves /api/v1/webhooks (segment change webhooks).
	Webhooks WebhookManager
	// Recommendations, when set, serves POST /v1/recommend, logging what it shows
	// to Impressions (if set); RecommenderModels, when set, serves
	// /api/v1/recommenders/{key}/train and /models (docs/recommendations.md).
	Recommendations   Recommender
	Impressions       ImpressionLogger
	RecommenderModels RecommenderModels
	// EventsRate, DecideRate and APIRate limit each API key (or dashboard user), in
	// requests per second with bursts of twice that, on POST /v1/events, on
	// /v1/decide and OFREP, and on /api/v1; 0 means no limit. Over it: 429 with
	// Retry-After.
	EventsRate, DecideRate, APIRate float64
	// Types holds the custom event types the collector accepts besides the built-in
	// ones; EventTypes, when set, serves /api/v1/event-types.
	Types      ingest.Types
	EventTypes EventTypeManager
	// Demo, when set, adds the demo shop's routes (/demo).
	Demo interface{ Register(e *echo.Echo) }
	// Privacy is applied to every user id and event at the edge: consent,
	// pseudonyms, scrubbing (docs/privacy.md). Nil: consent granted unless a request
	// says otherwise, ids and properties as sent.
	Privacy *ingest.Privacy
	// GDPR, when set, serves erasure (DELETE /api/v1/users/{id}, /api/v1/erasures)
	// and export (GET /api/v1/users/{id}/export); admins only.
	GDPR GDPR
	// Retention, when set, serves GET /api/v1/retention and PUT
	// /api/v1/retention/{table} (admins).
	Retention RetentionManager

	// TrustedProxies are the peers whose X-Forwarded-For and X-Forwarded-Proto are
	// believed (LIFT_TRUSTED_PROXIES); from anyone else those headers are ignored.
	TrustedProxies []netip.Prefix

	// StreamHeartbeat is how often an idle GrowthBook stream (/sub) gets a comment
	// (0: DefaultStreamHeartbeat); StreamsPerKey bounds the streams one client key may
	// hold open (0: DefaultStreamsPerKey). StreamsDone, when closed, ends every
	// stream: close it when the server shuts down, which waits for open requests.
	StreamHeartbeat time.Duration
	StreamsPerKey   int
	StreamsDone     <-chan struct{}
}

// New builds the HTTP handler.
func New(d Deps) *echo.Echo {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = errorHandler(d.Log)
	e.JSONSerializer = jsonSerializer{}
	trustProxies(e, d.TrustedProxies)
	m := newMetrics(d.Registry)
	s := &server{Deps: d, metrics: m, gb: &growthbook{streams: map[int64]int{}}}
	e.Use(requestID(), s.observe(), middleware.Recover())
	e.Use(middleware.BodyLimit(strconv.FormatInt(d.MaxBodyBytes, 10) + "B"))
	e.Use(browserCORS(), noFraming)

	e.GET("/healthz", func(c echo.Context) error { return c.JSON(http.StatusOK, map[string]string{"status": "ok"}) })
	e.GET("/readyz", s.readyz)
	if d.AdminMetrics {
		// A plain 404: without this route the client group's catch-all would ask
		// for an API key.
		e.GET("/metrics", func(echo.Context) error { return echo.ErrNotFound })
	} else {
		e.GET("/metrics", echo.WrapHandler(promhttp.HandlerFor(d.Registry, promhttp.HandlerOpts{})))
	}

	e.GET("/static/lift.js", sdkScript())
	if d.Demo != nil {
		d.Demo.Register(e)
	}
	requireClient := s.requireKey(auth.ClientKey, auth.ServerKey)
	client := e.Group("", requireClient)
	decide := s.rateLimit("decide", d.DecideRate)
	client.POST("/v1/decide", s.decide, decide...)
	client.POST("/ofrep/v1/evaluate/flags/:key", s.ofrepOne, decide...)
	client.POST("/ofrep/v1/evaluate/flags", s.ofrepBulk, decide...)
	if d.Recommendations != nil {
		client.POST("/v1/recommend", s.recommend, decide...)
	}
	// GrowthBook's SDKs (growthbook.go) carry the client key in the path.
	e.GET("/api/features/:key", s.gbFeatures, s.urlKey)
	e.GET("/sub/:key", s.gbStream, s.urlKey)
	e.POST("/api/eval/:key", s.gbRemoteEval, append([]echo.MiddlewareFunc{s.urlKey}, decide...)...)
	e.GET("/openapi.json", openAPIHandler())
	if d.Events != nil {
		// The browser SDK's beacons carry the client key in the body (bodyKey).
		e.POST("/v1/events", s.collect, append([]echo.MiddlewareFunc{s.bodyKey, requireClient}, s.rateLimit("events", d.EventsRate)...)...)
	}

	api := e.Group("/api/v1", append([]echo.MiddlewareFunc{s.requireServerKeyOrSession()}, s.rateLimit("api", d.APIRate)...)...)
	for path, kind := range map[string]experiments.Kind{
		"experiments":  experiments.KindExperiment,
		"flags":        experiments.KindFlag,
		"segments":     experiments.KindSegment,
		"saved-groups": experiments.KindSavedGroup,
		"features":     experiments.KindFeature,
		"recommenders": experiments.KindRecommender,
	} {
		h := docHandlers{s: s, kind: kind}
		api.GET("/"+path, h.list)
		api.POST("/"+path, h.create)
		api.GET("/"+path+"/:key", h.get)
		api.PUT("/"+path+"/:key", h.replace)
		api.DELETE("/"+path+"/:key", h.delete)
	}
	api.POST("/experiments/:key/:action", s.transition)
	api.POST("/segments/:key/publish", s.publishSegment)
	api.DELETE("/segments/:key/draft", s.discardSegmentDraft)
	api.GET("/segments/:key/versions", s.segmentVersions)
	api.GET("/audit", s.audit)
	if d.Results != nil {
		api.GET("/experiments/:key/results", s.results)
	}
	if d.Bandits != nil {
		api.GET("/experiments/:key/bandit", s.banditReport)
	}
	if d.SegmentStats != nil {
		api.GET("/segments/:key/stats", s.segmentStats)
	}
	if d.GDPR != nil {
		api.DELETE("/users/:id", s.eraseUser)
		api.GET("/users/:id/export", s.exportUser)
		api.GET("/erasures", s.erasureJobs)
		api.GET("/erasures/:id", s.erasureJob)
	}
	if d.Retention != nil {
		api.GET("/retention", s.retention)
		api.PUT("/retention/:table", s.setRetention)
	}
	if d.Webhooks != nil {
		s.registerWebhooks(api)
	}
	if d.RecommenderModels != nil {
		api.POST("/recommenders/:key/train", s.trainRecommender)
		api.GET("/recommenders/:key/models", s.recommenderModels)
	}
	api.GET("/keys", s.listKeys)
	api.POST("/keys", s.createKey)
	api.DELETE("/keys/:id", s.revokeKey)
	api.PUT("/keys/:id/origins", s.setKeyOrigins)
	api.POST("/keys/:id/rotate", s.rotateKey)
	if d.EventTypes != nil {
		api.GET("/event-types", s.listEventTypes)
		api.POST("/event-types", s.createEventType)
		api.GET("/event-types/:name", s.getEventType)
		api.PUT("/event-types/:name", s.updateEventType)
	}
	apiFallbacks(e, map[string]echo.MiddlewareFunc{"/api/v1/": s.requireServerKeyOrSession()})
	if d.Dashboard != nil {
		d.Dashboard.Register(e)
	}
	return e
}

type server struct {
	Deps
	metrics *metrics
	gb      *growthbook
}
