package web

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/liftlab/lift/web/auth"
	"github.com/liftlab/lift/web/session"
)

const (
	keyContext  = "lift.key"
	userContext = "lift.user"
)

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
					if origin := c.Request().Header.Get("Origin"); origin != "" && !sameOrigin(origin, c.Request()) && !k.AllowsOrigin(origin) {
						return echo.NewHTTPError(http.StatusForbidden, "origin "+origin+" may not use this API key (see its allowed_origins)")
					}
					c.Set(keyContext, k)
					return next(c)
				}
			}
			return echo.NewHTTPError(http.StatusForbidden, "a "+string(k.Kind)+" key cannot call this endpoint")
		}
	}
}

// sameOrigin: browsers send Origin with same-origin POSTs too (lift's own pages),
// which no allow-list needs to name.
func sameOrigin(origin string, r *http.Request) bool {
	u, err := url.Parse(origin)
	return err == nil && u.Host == r.Host
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
	if u, ok := c.Get(userContext).(auth.User); ok {
		return "user:" + u.Email
	}
	return "unknown"
}

// requireServerKeyOrSession admits a server key, or, when the request carries no key,
// a signed-in dashboard user. Browsers attach the session cookie to requests other
// sites trigger, so a cookie-authenticated unsafe request must also carry the CSRF
// token; viewers may only read, editors change configuration, admins manage keys and
// users.
func (s *server) requireServerKeyOrSession() echo.MiddlewareFunc {
	byKey := s.requireKey(auth.ServerKey)
	csrf := session.CSRF(nil)
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		withKey := byKey(next)
		withSession := csrf(next)
		return func(c echo.Context) error {
			if s.Sessions == nil || presentedKey(c.Request()) != "" || !session.HasCookie(c.Request()) {
				return withKey(c)
			}
			u, ok, err := s.Sessions.User(c)
			if err != nil {
				return err
			}
			if !ok {
				return echo.NewHTTPError(http.StatusUnauthorized, "session expired: sign in again")
			}
			if need := apiRole(c); !u.Role.Allows(need) {
				return echo.NewHTTPError(http.StatusForbidden, "a "+string(u.Role)+" cannot do this; it needs the "+string(need)+" role")
			}
			c.Set(userContext, u)
			return withSession(c)
		}
	}
}

// apiRole is the least role a dashboard user needs for a management API request.
func apiRole(c echo.Context) auth.Role {
	switch {
	case strings.HasPrefix(c.Path(), "/api/v1/keys"), strings.HasPrefix(c.Path(), "/api/v1/users"),
		strings.HasPrefix(c.Path(), "/api/v1/erasures"):
		return auth.Admin
	case strings.HasPrefix(c.Path(), "/api/v1/retention") && c.Request().Method != http.MethodGet:
		return auth.Admin
	case c.Request().Method == http.MethodGet || c.Request().Method == http.MethodHead:
		return auth.Viewer
	}
	return auth.Editor
}
