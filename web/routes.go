package web

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"
)

// apiPrefixes are the paths where every answer is JSON, errors included: a client of
// the API must never get the dashboard's login redirect or an HTML page.
var apiPrefixes = []string{"/v1", "/ofrep", "/api"}

func isAPIPath(path string) bool {
	for _, p := range apiPrefixes {
		if path == p || strings.HasPrefix(path, p+"/") {
			return true
		}
	}
	return false
}

// apiFallbacks answers what the API's routes do not: a known path with another method
// gets 405 with Allow, an unknown path under an API prefix 404, both as JSON. Call it
// after the API's routes and before the dashboard's, whose catch-all would otherwise
// send API clients to /login. guards maps a path prefix to the authentication its
// routes need, which a wrong method (or an unknown path beside them) then needs too:
// the management API tells only its own clients which paths and methods it has.
func apiFallbacks(e *echo.Echo, guards map[string]echo.MiddlewareFunc) {
	allowed := map[string][]string{}
	for _, r := range e.Routes() {
		if isAPIPath(r.Path) && r.Method != echo.RouteNotFound && !slices.Contains(allowed[r.Path], r.Method) {
			allowed[r.Path] = append(allowed[r.Path], r.Method)
		}
	}
	for path, methods := range allowed {
		slices.Sort(methods)
		h := methodNotAllowed(strings.Join(methods, ", "))
		var mw []echo.MiddlewareFunc
		for prefix, guard := range guards {
			if strings.HasPrefix(path, prefix) {
				mw = append(mw, guard)
			}
		}
		for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
			if !slices.Contains(methods, m) {
				e.Add(m, path, h, mw...).Name = FallbackRouteName
			}
		}
	}
	for _, p := range apiPrefixes {
		// An unknown path under a guarded prefix's parent (/api/v2/… beside
		// /api/v1/) is as private as the guarded routes.
		var mw []echo.MiddlewareFunc
		for prefix, guard := range guards {
			if strings.HasPrefix(prefix, p+"/") {
				mw = append(mw, guard)
			}
		}
		e.RouteNotFound(p, apiNotFound, mw...)
		e.RouteNotFound(p+"/*", apiNotFound, mw...)
	}
}

// FallbackRouteName names the routes apiFallbacks adds, which are not endpoints.
const FallbackRouteName = "lift:method-not-allowed"

func methodNotAllowed(allow string) echo.HandlerFunc {
	return func(c echo.Context) error {
		c.Response().Header().Set(echo.HeaderAllow, allow)
		return echo.NewHTTPError(http.StatusMethodNotAllowed, c.Request().Method+" is not allowed on "+c.Request().URL.Path+"; use "+allow)
	}
}

func apiNotFound(c echo.Context) error {
	return echo.NewHTTPError(http.StatusNotFound, "no API endpoint "+c.Request().Method+" "+c.Request().URL.Path+" (docs/api.md lists them)")
}

// jsonSerializer writes lift's JSON answers as they are: encoding/json's default
// escapes <, > and & as \u003c…, which only matters for JSON pasted into HTML and
// makes messages such as "Bearer <key>" unreadable. nosniff keeps browsers from ever
// reading an answer as anything but JSON.
type jsonSerializer struct{ echo.DefaultJSONSerializer }

func (jsonSerializer) Serialize(c echo.Context, i any, indent string) error {
	c.Response().Header().Set("X-Content-Type-Options", "nosniff")
	enc := json.NewEncoder(c.Response())
	enc.SetEscapeHTML(false)
	if indent != "" {
		enc.SetIndent("", indent)
	}
	return enc.Encode(i)
}
