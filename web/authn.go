package web

import (
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/liftlab/lift/web/auth"
)

const keyContext = "lift.key"

// requireKey admits requests carrying an active key of one of the given kinds:
// 401 without a valid key, 403 with a key of the wrong kind.
func (s *server) requireKey(kinds ...auth.KeyKind) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			secret := presentedKey(c.Request())
			if secret == "" {
				return echo.NewHTTPError(http.StatusUnauthorized, "missing API key: send Authorization: Bearer <key> or X-API-Key")
			}
			k, ok := s.Keys.Lookup(secret)
			if !ok {
				return echo.NewHTTPError(http.StatusUnauthorized, "invalid or revoked API key")
			}
			for _, kind := range kinds {
				if k.Kind == kind {
					c.Set(keyContext, k)
					return next(c)
				}
			}
			return echo.NewHTTPError(http.StatusForbidden, "a "+string(k.Kind)+" key cannot call this endpoint")
		}
	}
}

func presentedKey(r *http.Request) string {
	if v, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		return strings.TrimSpace(v)
	}
	return r.Header.Get("X-API-Key")
}

// actor names who made a change, for the audit log.
func actor(c echo.Context) string {
	if k, ok := c.Get(keyContext).(auth.Key); ok {
		return "key:" + k.Name + "#" + k.Prefix
	}
	return "unknown"
}
