package web_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/liftlab/lift/web"
	"github.com/liftlab/lift/web/demo"
)

// pages registers the demo shop and two pages that set their own policies.
type pages struct{}

func (pages) Register(e *echo.Echo) {
	demo.Shop{ClientKey: evClientKey}.Register(e)
	e.GET("/with-csp", func(c echo.Context) error {
		c.Response().Header().Set("Content-Security-Policy", "default-src 'self';")
		return c.HTML(http.StatusOK, "<p>x</p>")
	})
	e.GET("/framed-by-self", func(c echo.Context) error {
		c.Response().Header().Set("Content-Security-Policy", "default-src 'self'; Frame-Ancestors 'self'")
		return c.HTML(http.StatusOK, "<p>x</p>")
	})
}

// Finding 8d of issue 17: no response forbade framing (clickjacking of the
// dashboard). Every response now carries frame-ancestors 'none', merged into the
// handler's own policy, and X-Frame-Options: DENY; the demo shop still loads.
func TestNoFraming(t *testing.T) {
	h := newOpsHandler(t, slog.New(slog.DiscardHandler), func(d *web.Deps) { d.Demo = pages{} })
	for _, tc := range []struct{ path, wantCSP, wantXFO string }{
		{"/healthz", "frame-ancestors 'none'", "DENY"},
		{"/demo", "frame-ancestors 'none'", "DENY"},
		{"/nope", "frame-ancestors 'none'", "DENY"}, // errors too
		{"/with-csp", "default-src 'self'; frame-ancestors 'none'", "DENY"},
		{"/framed-by-self", "default-src 'self'; Frame-Ancestors 'self'", ""}, // its own choice
	} {
		rec := send(h, "GET", tc.path, "", "")
		if got := rec.Header().Get("Content-Security-Policy"); got != tc.wantCSP {
			t.Errorf("GET %s: Content-Security-Policy %q, want %q", tc.path, got, tc.wantCSP)
		}
		if got := rec.Header().Get("X-Frame-Options"); got != tc.wantXFO {
			t.Errorf("GET %s: X-Frame-Options %q, want %q", tc.path, got, tc.wantXFO)
		}
	}
	// The shop is a page of its own (not framed) that imports lift.js as a module.
	for path, want := range map[string]string{"/demo": "/demo/assets/shop.js", "/demo/assets/shop.js": "/static/lift.js", "/static/lift.js": "export"} {
		if rec := send(h, "GET", path, "", ""); rec.Code != 200 || !strings.Contains(rec.Body.String(), want) {
			t.Errorf("GET %s: status %d, want 200 with %q", path, rec.Code, want)
		}
	}

	admin := httptest.NewServer(web.Admin(prometheus.NewRegistry()))
	defer admin.Close()
	resp, err := http.Get(admin.URL + "/debug/pprof/")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.Header.Get("X-Frame-Options") != "DENY" || resp.Header.Get("Content-Security-Policy") != "frame-ancestors 'none'" {
		t.Errorf("admin /debug/pprof/: headers %v, want framing forbidden", resp.Header)
	}
}

// Finding 8a of issue 17: with an admin address the metrics are served there only
// (cmd/lift's TestMetricsOnAdminAddr checks the wiring of LIFT_ADMIN_ADDR).
func TestAdminMetrics(t *testing.T) {
	for _, adminMetrics := range []bool{false, true} {
		h := newOpsHandler(t, slog.New(slog.DiscardHandler), func(d *web.Deps) { d.AdminMetrics = adminMetrics })
		want := 200
		if adminMetrics {
			want = 404
		}
		if rec := send(h, "GET", "/metrics", "", ""); rec.Code != want {
			t.Errorf("AdminMetrics %v: public /metrics status %d, want %d", adminMetrics, rec.Code, want)
		}
	}
}
