package web

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/liftlab/lift/web/auth"
	"github.com/liftlab/lift/web/static"
)

// What the browser SDK (web/static/lift.js, docs/sdk.md) needs from the server:
// CORS on the client endpoints, the SDK itself, and a way to send the client key
// with navigator.sendBeacon, which cannot set headers.

// browserPaths are the endpoints a page on another origin calls.
var browserPaths = []string{"/v1/", "/ofrep/", "/static/lift.js", "/api/features/", "/api/eval/", "/sub/", "/openapi.json"}

// browserCORS lets pages on any origin call the client endpoints. Client keys are
// public by design (they ship in pages) and the endpoints use no cookies, so no
// credentials are allowed and the wildcard origin grants nothing a script could not
// do from a server; preflights are cached for 10 minutes.
func browserCORS() echo.MiddlewareFunc {
	return middleware.CORSWithConfig(middleware.CORSConfig{
		Skipper: func(c echo.Context) bool {
			p := c.Request().URL.Path
			for _, prefix := range browserPaths {
				if strings.HasPrefix(p, prefix) {
					return false
				}
			}
			return true
		},
		AllowOrigins: []string{"*"},
		AllowMethods: []string{http.MethodGet, http.MethodPost},
		AllowHeaders: []string{"Authorization", "X-API-Key", "Content-Type", "If-None-Match"},
		// X-SSE-Support tells GrowthBook's browser SDK that it may stream.
		ExposeHeaders: []string{"ETag", "Date", "Retry-After", "X-SSE-Support"},
		MaxAge:        600,
	})
}

// bodyKey lets POST /v1/events carry a client key in the body's "key" field when the
// request has no key header, as navigator.sendBeacon (and a CORS "simple" request,
// which needs no preflight) cannot set one. Only client keys are accepted there:
// server keys must never sit in page source, and one found in a body is refused
// (403) rather than used.
func (s *server) bodyKey(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if presentedKey(r) != "" {
			return next(c)
		}
		body, err := readBody(c)
		if err != nil {
			return err
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		var carrier struct {
			Key string `json:"key"`
		}
		if json.Unmarshal(body, &carrier) != nil || carrier.Key == "" {
			return next(c) // requireKey answers 401
		}
		k, ok := s.Keys.Lookup(carrier.Key)
		if ok && k.Kind != auth.ClientKey {
			return echo.NewHTTPError(http.StatusForbidden, "key: only client keys may be sent in the request body; send server keys in the Authorization header")
		}
		r.Header.Set("X-API-Key", carrier.Key)
		return next(c)
	}
}

// sdkScript serves the browser SDK with an ETag, so browsers revalidate it cheaply
// and pick up a new version within five minutes of an upgrade.
func sdkScript() echo.HandlerFunc {
	src, err := static.FS.ReadFile("lift.js")
	if err != nil {
		panic("web: lift.js is not embedded: " + err.Error())
	}
	sum := sha256.Sum256(src)
	etag := `"` + hex.EncodeToString(sum[:12]) + `"`
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("ETag", etag)
		h.Set("Cache-Control", "public, max-age=300")
		if etagMatches(c.Request().Header.Get("If-None-Match"), etag) {
			return c.NoContent(http.StatusNotModified)
		}
		return c.Blob(http.StatusOK, "text/javascript; charset=utf-8", src)
	}
}
