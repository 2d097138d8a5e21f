package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/liftlab/lift/experiments"
	"github.com/liftlab/lift/ingest"
	"github.com/liftlab/lift/internal/logctx"
	"github.com/liftlab/lift/web"
)

// listManager answers the management API's list route; the tests here call no other.
type listManager struct{ experiments.Manager }

func (listManager) List(context.Context, experiments.Kind) ([]json.RawMessage, error) {
	return nil, nil
}

// syncBuffer is a log destination the handler's goroutines may share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) lines(t *testing.T) []map[string]any {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	dec := json.NewDecoder(bytes.NewReader(b.buf.Bytes()))
	for dec.More() {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

func newOpsHandler(t *testing.T, log *slog.Logger, deps func(*web.Deps)) http.Handler {
	t.Helper()
	var e experiments.Experiment
	if err := json.Unmarshal([]byte(`{"key":"hero","type":"ab","status":"running",
		"variants":[{"key":"control","weight":0.5},{"key":"bold","weight":0.5}]}`), &e); err != nil {
		t.Fatal(err)
	}
	e.Normalize()
	live := experiments.NewLive(evLoader{&experiments.Config{Experiments: []experiments.Experiment{e}}})
	if err := live.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	d := web.Deps{
		Log: log, Snapshots: live, Keys: evKeys{}, Manager: listManager{},
		Ready:    func(context.Context) map[string]error { return nil },
		Registry: reg, MaxBodyBytes: 4096,
		Events: &evPublisher{}, EventMetrics: ingest.NewMetrics(reg), Exposures: &evExposures{},
	}
	if deps != nil {
		deps(&d)
	}
	return web.New(d)
}

func send(h http.Handler, method, path, key, body string, header ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// Every endpoint class has its own per-key token bucket: over it, 429 with a
// Retry-After in whole seconds; other keys and other classes are not affected.
func TestRateLimitPerKeyAndClass(t *testing.T) {
	h := newOpsHandler(t, slog.New(slog.DiscardHandler), func(d *web.Deps) {
		d.DecideRate, d.EventsRate, d.APIRate = 2, 2, 0.5 // bursts of 4, 4 and 1
	})
	classes := []struct {
		name, method, path, key, body string
		burst                         int
	}{
		{"decide", "POST", "/v1/decide", evClientKey, `{"user_id":"u1"}`, 4},
		{"ofrep", "POST", "/ofrep/v1/evaluate/flags", evServerKey, `{"context":{"targetingKey":"u1"}}`, 4},
		{"events", "POST", "/v1/events", evClientKey, `{"events":[]}`, 4},
		{"api", "GET", "/api/v1/experiments", evServerKey, ``, 1},
	}
	for _, c := range classes {
		t.Run(c.name, func(t *testing.T) {
			for i := range c.burst {
				if rec := send(h, c.method, c.path, c.key, c.body); rec.Code >= 300 {
					t.Fatalf("request %d within the burst: status %d %s", i, rec.Code, rec.Body)
				}
			}
			rec := send(h, c.method, c.path, c.key, c.body)
			if rec.Code != http.StatusTooManyRequests {
				t.Fatalf("over the burst: status %d, want 429", rec.Code)
			}
			secs, err := strconv.Atoi(rec.Header().Get("Retry-After"))
			if err != nil || secs < 1 || secs > 2 {
				t.Errorf("Retry-After %q: want the whole seconds until a token is back (1 or 2)", rec.Header().Get("Retry-After"))
			}
		})
	}
	// The client key exhausted its events bucket, not the server key's.
	if rec := send(h, "POST", "/v1/events", evServerKey, `{"events":[]}`); rec.Code != 202 {
		t.Errorf("another key's events: status %d, want 202", rec.Code)
	}
}

// Every class refuses bodies over the limit with 413, before reading them whole.
func TestBodyLimitOnEveryClass(t *testing.T) {
	h := newOpsHandler(t, slog.New(slog.DiscardHandler), nil)
	big := `{"user_id":"` + strings.Repeat("x", 5000) + `"}`
	for _, c := range []struct{ path, key string }{
		{"/v1/decide", evClientKey}, {"/v1/events", evClientKey}, {"/ofrep/v1/evaluate/flags", evClientKey},
		{"/api/v1/experiments", evServerKey},
	} {
		if rec := send(h, "POST", c.path, c.key, big); rec.Code != http.StatusRequestEntityTooLarge {
			t.Errorf("%s: status %d, want 413", c.path, rec.Code)
		}
	}
}

// A request's id is answered in X-Request-Id (the client's own when it sends one)
// and is in every log line the request causes.
func TestRequestIDInResponseAndLogs(t *testing.T) {
	var out syncBuffer
	log := slog.New(logctx.Handler(slog.NewJSONHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug})))
	h := newOpsHandler(t, log, func(d *web.Deps) {
		d.Events = &evPublisher{err: context.DeadlineExceeded} // a 500, which the error handler logs
	})
	rec := send(h, "POST", "/v1/events", evClientKey, `{"events":[{"type":"page_view","user_id":"u1"}]}`, "X-Request-Id", "client-chosen-id")
	if rec.Code != 500 || rec.Header().Get("X-Request-Id") != "client-chosen-id" {
		t.Fatalf("status %d, X-Request-Id %q", rec.Code, rec.Header().Get("X-Request-Id"))
	}
	rec = send(h, "POST", "/v1/decide", evClientKey, `{"user_id":"u1"}`)
	generated := rec.Header().Get("X-Request-Id")
	if len(generated) < 16 {
		t.Fatalf("generated X-Request-Id %q", generated)
	}
	byID := map[string][]string{}
	for _, l := range out.lines(t) {
		id, _ := l["request_id"].(string)
		byID[id] = append(byID[id], l["msg"].(string))
	}
	if got := strings.Join(byID["client-chosen-id"], ","); got != "request failed,request" {
		t.Errorf("log lines of the failed request: %q, want the error and the access line", got)
	}
	if got := strings.Join(byID[generated], ","); got != "request" {
		t.Errorf("log lines of the decision: %q", got)
	}
	if len(byID[""]) != 0 {
		t.Errorf("log lines without a request id: %v", byID[""])
	}
}

func TestHTTPMetricsByRoute(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := newOpsHandler(t, slog.New(slog.DiscardHandler), func(d *web.Deps) {
		d.Registry, d.EventMetrics = reg, ingest.NewMetrics(reg)
	})
	send(h, "POST", "/v1/decide", evClientKey, `{"user_id":"u1"}`)
	send(h, "POST", "/v1/decide", "", `{"user_id":"u1"}`)
	send(h, "GET", "/nope", evClientKey, ``)
	rec := send(h, "GET", "/metrics", "", ``)
	body := rec.Body.String()
	for _, want := range []string{
		`lift_http_requests_total{code="200",route="/v1/decide"} 1`,
		`lift_http_requests_total{code="401",route="/v1/decide"} 1`,
		`lift_http_requests_total{code="404",route="/*"} 1`, // the pattern, not the path,
		`lift_http_request_duration_seconds_count{route="/v1/decide"} 2`,
		`lift_rate_limited_total{class="api"} 0`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// The admin handler serves the profiler (and the metrics); the public one does not.
func TestAdminHandler(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "lift_test_total", Help: "t"}))
	admin := httptest.NewServer(web.Admin(reg))
	defer admin.Close()
	for path, want := range map[string]string{"/debug/pprof/": "goroutine", "/debug/pprof/goroutine?debug=1": "goroutine profile", "/metrics": "lift_test_total"} {
		resp, err := http.Get(admin.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), want) {
			t.Errorf("admin %s: status %d, want 200 containing %q", path, resp.StatusCode, want)
		}
	}
	h := newOpsHandler(t, slog.New(slog.DiscardHandler), nil)
	if rec := send(h, "GET", "/debug/pprof/", evServerKey, ""); rec.Code != 404 {
		t.Errorf("public handler /debug/pprof/: status %d, want 404", rec.Code)
	}
}
