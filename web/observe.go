package web

import (
	"log/slog"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/liftlab/lift/internal/logctx"
)

// requestID gives every request an id (the client's X-Request-Id, else a random
// one), answers it in X-Request-Id and puts it in the request's context, so every log
// line written with that context carries it (see internal/logctx).
func requestID() echo.MiddlewareFunc {
	return middleware.RequestIDWithConfig(middleware.RequestIDConfig{
		RequestIDHandler: func(c echo.Context, id string) {
			c.SetRequest(c.Request().WithContext(logctx.WithRequestID(c.Request().Context(), id)))
		},
	})
}

// observe counts and times every request by route and status, and writes one access
// log line per request at debug level (at thousands of decisions a second an info
// line each would cost more than the decisions; 5xx are logged by the error handler).
func (s *server) observe() echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			start := time.Now()
			err := next(c)
			if err != nil {
				c.Error(err) // writes the status the metrics and the log report
			}
			route := c.Path()
			if route == "" {
				route = "unmatched"
			}
			took := time.Since(start)
			status := c.Response().Status
			s.metrics.observeRequest(route, status, took)
			ctx := c.Request().Context()
			if s.Log.Enabled(ctx, slog.LevelDebug) {
				path := c.Request().URL.Path
				if strings.HasPrefix(route, "/api/v1/users/") {
					path = route // the path names a user (erasure, export): logs must not (docs/privacy.md)
				}
				if keyInPath[route] {
					path = route // GrowthBook's SDKs send the key in the path: logs keep no keys
				}
				s.Log.LogAttrs(ctx, slog.LevelDebug, "request", slog.String("method", c.Request().Method),
					slog.String("route", route), slog.String("path", path), slog.Int("status", status),
					slog.Duration("took", took), slog.Int64("bytes", c.Response().Size))
			}
			return nil
		}
	}
}

// keyInPath are the routes whose path carries an API key (growthbook.go).
var keyInPath = map[string]bool{"/api/features/:key": true, "/sub/:key": true, "/api/eval/:key": true}
