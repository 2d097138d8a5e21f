// Package demo serves the demo shop at /demo: a small retail page that uses the
// browser SDK (/static/lift.js) for the scenario `lift demo seed` creates — the hero
// banner test, the free-shipping flag, the High Intent discount and the
// recommendation bandit. It is served only when LIFT_DEMO_CLIENT_KEY is set (make run).
package demo

import (
	"bytes"
	"embed"
	"html/template"
	"net/http"

	"github.com/labstack/echo/v4"
)

//go:embed assets
var assets embed.FS

var page = template.Must(template.ParseFS(assets, "assets/shop.html"))

// Shop is the demo's HTTP handler.
type Shop struct {
	// ClientKey is embedded in the page for lift.js; client keys are public.
	ClientKey string
}

// Register adds /demo and its assets.
func (s Shop) Register(e *echo.Echo) {
	var buf bytes.Buffer
	if err := page.Execute(&buf, map[string]string{"ClientKey": s.ClientKey}); err != nil {
		panic("demo: render shop.html: " + err.Error())
	}
	html := buf.Bytes()
	e.GET("/demo", func(c echo.Context) error {
		c.Response().Header().Set("Cache-Control", "no-cache")
		return c.HTMLBlob(http.StatusOK, html)
	})
	files := http.FileServerFS(assets)
	e.GET("/demo/assets/*", echo.WrapHandler(http.StripPrefix("/demo/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	}))))
}
