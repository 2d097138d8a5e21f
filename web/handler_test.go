package web_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/liftlab/lift/experiments"
	"github.com/liftlab/lift/internal/derrors"
	"github.com/liftlab/lift/web"
	"github.com/liftlab/lift/web/auth"
)

// The handler fixture: a real experiments.Live over testdata/handler_config.json, one
// client key, no network services.

const testClientKey = "lift_c_handler_test_key"

type staticLoader struct{ cfg *experiments.Config }

func (l staticLoader) LoadConfig(context.Context) (*experiments.Config, error) { return l.cfg, nil }

type oneKey struct{}

func (oneKey) Lookup(secret string) (auth.Key, bool) {
	if secret == testClientKey {
		return auth.Key{ID: 1, Name: "test", Kind: auth.ClientKey, Prefix: "lift_c_h"}, true
	}
	return auth.Key{}, false
}

// loadTestConfig reads the fixture and checks that every document in it is valid, so a
// typo in the fixture fails loudly instead of silently never matching.
func loadTestConfig(t *testing.T) *experiments.Config {
	t.Helper()
	data, err := os.ReadFile("testdata/handler_config.json")
	if err != nil {
		t.Fatal(err)
	}
	var cfg experiments.Config
	if err := json.Unmarshal(data, &cfg); err != nil {
		t.Fatal(err)
	}
	for _, e := range cfg.Experiments {
		e.Normalize()
		if err := e.Validate(nil); err != nil {
			t.Fatalf("fixture experiment %s: %v", e.Key, err)
		}
	}
	for _, f := range cfg.Flags {
		f.Normalize()
		if err := f.Validate(nil); err != nil {
			t.Fatalf("fixture flag %s: %v", f.Key, err)
		}
	}
	return &cfg
}

type handlerOpts struct {
	ready  func(context.Context) map[string]error
	noLoad bool // never load a snapshot, as before the first successful reload
}

func newTestHandler(t *testing.T, o handlerOpts) http.Handler {
	t.Helper()
	live := experiments.NewLive(staticLoader{loadTestConfig(t)})
	if !o.noLoad {
		if err := live.Reload(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if o.ready == nil {
		o.ready = func(context.Context) map[string]error { return map[string]error{} }
	}
	return web.New(web.Deps{
		Log:          slog.New(slog.DiscardHandler),
		Snapshots:    live,
		Keys:         oneKey{},
		Manager:      nil, // the routes under test never call it
		Ready:        o.ready,
		Registry:     prometheus.NewRegistry(),
		MaxBodyBytes: 1 << 20,
	})
}

// request is one HTTP request to the handler.
type request struct {
	method, path string
	body         io.Reader
	auth         string // "bearer" (default), "x-api-key", "none" or "invalid"
	header       map[string]string
}

func (r request) do(t *testing.T, h http.Handler) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(r.method, r.path, r.body)
	if r.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	switch r.auth {
	case "", "bearer":
		req.Header.Set("Authorization", "Bearer "+testClientKey)
	case "x-api-key":
		req.Header.Set("X-API-Key", testClientKey)
	case "invalid":
		req.Header.Set("Authorization", "Bearer lift_c_not_a_key")
	case "none":
	default:
		t.Fatalf("unknown auth %q", r.auth)
	}
	for k, v := range r.header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	checkOpenAPI(t, req, rec)
	return rec
}

// checkOpenAPI validates an answer against web/openapi.json (openapi_test.go) when the
// document has the operation; requests to undocumented paths are left to the tests
// that make them.
func checkOpenAPI(t *testing.T, req *http.Request, rec *httptest.ResponseRecorder) {
	t.Helper()
	doc := openAPI(t)
	if _, err := doc.Operation(req.Method, req.URL.Path); err != nil {
		return
	}
	body := rec.Body.Bytes()
	if rec.Header().Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if body, err = io.ReadAll(zr); err != nil {
			t.Fatal(err)
		}
	}
	if err := doc.CheckResponse(req.Method, req.URL.Path, rec.Code, rec.Header().Get("Content-Type"), body); err != nil {
		t.Errorf("%v\nbody: %s", err, rec.Body.Bytes())
	}
}

// wantMediaType fails unless the response declares the media type (parameters such as
// charset are allowed).
func wantMediaType(t *testing.T, rec *httptest.ResponseRecorder, want string) {
	t.Helper()
	ct := rec.Header().Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || mt != want {
		t.Fatalf("Content-Type %q, want %s", ct, want)
	}
}

// decodeObject decodes a JSON object keeping numbers exact.
func decodeObject(t *testing.T, body []byte) map[string]any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil || m == nil {
		t.Fatalf("body is not a JSON object (%v): %s", err, body)
	}
	return m
}

// jsonEqual compares two JSON values by content.
func jsonEqual(t *testing.T, got any, want string) bool {
	t.Helper()
	g, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	var a, b any
	if err := json.Unmarshal(g, &a); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(want), &b); err != nil {
		t.Fatalf("bad expectation %s: %v", want, err)
	}
	ga, _ := json.Marshal(a)
	gb, _ := json.Marshal(b)
	return bytes.Equal(ga, gb)
}

func sortedKeysOf(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// contractReasons are the decision reasons of POST /v1/decide (docs/api.md, "Decisions").
var contractReasons = []string{"split", "bandit", "targeting_match", "default", "disabled", "not_eligible"}

// wantDecision describes one expected decision; variants lists the acceptable variants
// with the value each one carries (several for experiments, where the hash decides).
type wantDecision struct {
	reason     string
	experiment bool
	variants   map[string]string // variant key -> JSON value
}

func checkDecideShape(t *testing.T, body []byte, userID string, want map[string]wantDecision) {
	t.Helper()
	checkDecide(t, body, userID, want, false)
}

// checkDecide checks a decide answer; with exposures (the request said "track":
// false) every assigned decision must carry the $exposure properties to log.
func checkDecide(t *testing.T, body []byte, userID string, want map[string]wantDecision, exposures bool) {
	t.Helper()
	m := decodeObject(t, body)
	delete(m, "unknown_keys") // checked by TestDecideUnknownKeys
	if got := sortedKeysOf(m); !slices.Equal(got, []string{"decisions", "user_id"}) {
		t.Fatalf("top-level fields %v, want decisions and user_id: %s", got, body)
	}
	if m["user_id"] != userID {
		t.Fatalf("user_id %v, want %q", m["user_id"], userID)
	}
	decisions, ok := m["decisions"].(map[string]any)
	if !ok {
		t.Fatalf("decisions is %T, want an object", m["decisions"])
	}
	if got, wantKeys := sortedKeysOf(decisions), sortedKeys(want); !slices.Equal(got, wantKeys) {
		t.Fatalf("decided keys %v, want %v", got, wantKeys)
	}
	for key, raw := range decisions {
		d, ok := raw.(map[string]any)
		if !ok {
			t.Fatalf("%s: decision is %T, want an object", key, raw)
		}
		fields := []string{"experiment", "reason", "value", "variant"}
		if assigned := want[key].experiment && want[key].reason != "not_eligible"; exposures && assigned {
			fields = []string{"experiment", "exposure", "reason", "value", "variant"}
			x, _ := d["exposure"].(map[string]any)
			if x["experiment"] != key || x["variant"] != d["variant"] || x["assignment_probability"] != json.Number("0.5") || len(x) != 3 {
				t.Errorf("%s: exposure %v, want experiment %s, variant %v, assignment_probability 0.5", key, d["exposure"], key, d["variant"])
			}
		}
		if got := sortedKeysOf(d); !slices.Equal(got, fields) {
			t.Errorf("%s: fields %v, want %v", key, got, fields)
		}
		variant, ok1 := d["variant"].(string)
		reason, ok2 := d["reason"].(string)
		exp, ok3 := d["experiment"].(bool)
		if !ok1 || !ok2 || !ok3 {
			t.Errorf("%s: variant %T, reason %T, experiment %T; want string, string, boolean", key, d["variant"], d["reason"], d["experiment"])
			continue
		}
		if !slices.Contains(contractReasons, reason) {
			t.Errorf("%s: reason %q is not one of the contract's %v", key, reason, contractReasons)
		}
		w := want[key]
		if reason != w.reason || exp != w.experiment {
			t.Errorf("%s: reason %q experiment %v, want %q %v", key, reason, exp, w.reason, w.experiment)
		}
		value, known := w.variants[variant]
		if !known {
			t.Errorf("%s: variant %q, want one of %v", key, variant, sortedKeys(w.variants))
			continue
		}
		if !jsonEqual(t, d["value"], value) {
			t.Errorf("%s: variant %q has value %v, want %s", key, variant, d["value"], value)
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// everyDecisionForUS is what a user with country US gets from the fixture.
var everyDecisionForUS = map[string]wantDecision{
	"hero-banner":  {"split", true, map[string]string{"control": `{"img":"a.png"}`, "bold": `{"img":"b.png"}`}},
	"button-color": {"split", true, map[string]string{"green": `"green"`, "red": `"red"`}},
	"draft-test":   {"not_eligible", true, map[string]string{"control": `"c"`}},
	"new-checkout": {"targeting_match", false, map[string]string{"on": `true`}},
	"banner-text":  {"default", false, map[string]string{"default": `"Welcome"`}},
	"max-items":    {"default", false, map[string]string{"default": `2.5`}},
	"theme":        {"default", false, map[string]string{"default": `{"color":"blue","dark":false}`}},
	"old-feature":  {"disabled", false, map[string]string{"default": `false`}},
}

// chunked hides the length of a body, as a client streaming it would.
type chunked struct{ r io.Reader }

func (c chunked) Read(p []byte) (int, error) { return c.r.Read(p) }

func TestDecideHandler(t *testing.T) {
	h := newTestHandler(t, handlerOpts{})
	big := `{"user_id":"u1","attributes":{"pad":"` + strings.Repeat("x", 1<<20) + `"}}`
	tests := []struct {
		name   string
		req    request
		status int
		check  func(t *testing.T, body []byte)
	}{
		{"all keys", request{body: strings.NewReader(`{"user_id":"u1","attributes":{"country":"US"}}`)}, http.StatusOK,
			func(t *testing.T, body []byte) { checkDecideShape(t, body, "u1", everyDecisionForUS) }},
		{"X-API-Key, track false", request{auth: "x-api-key", body: strings.NewReader(`{"user_id":"u1","attributes":{"country":"US"},"track":false}`)}, http.StatusOK,
			func(t *testing.T, body []byte) { checkDecide(t, body, "u1", everyDecisionForUS, true) }},
		{"selected keys, unknown key left out", request{body: strings.NewReader(`{"user_id":"u2","keys":["new-checkout","max-items","nope"],"attributes":{"plan":"pro"}}`)}, http.StatusOK,
			func(t *testing.T, body []byte) {
				checkDecideShape(t, body, "u2", map[string]wantDecision{
					"new-checkout": {"default", false, map[string]string{"default": `false`}},
					"max-items":    {"targeting_match", false, map[string]string{"pro": `10`}},
				})
			}},
		{"malformed JSON", request{body: strings.NewReader(`{"user_id":`)}, http.StatusBadRequest, wantError("")},
		{"missing user_id", request{body: strings.NewReader(`{"attributes":{}}`)}, http.StatusBadRequest, wantError("user_id")},
		{"user_id not a string", request{body: strings.NewReader(`{"user_id":7}`)}, http.StatusBadRequest, wantError("user_id")},
		{"no key", request{auth: "none", body: strings.NewReader(`{"user_id":"u1"}`)}, http.StatusUnauthorized, wantError("")},
		{"invalid key", request{auth: "invalid", body: strings.NewReader(`{"user_id":"u1"}`)}, http.StatusUnauthorized, wantError("")},
		{"body over the limit", request{body: strings.NewReader(big)}, http.StatusRequestEntityTooLarge, wantError("")},
		{"body over the limit, length unknown", request{body: chunked{strings.NewReader(big)}}, http.StatusRequestEntityTooLarge, wantError("")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.req.method, tt.req.path = http.MethodPost, "/v1/decide"
			rec := tt.req.do(t, h)
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.status, rec.Body)
			}
			wantMediaType(t, rec, "application/json")
			tt.check(t, rec.Body.Bytes())
		})
	}
}

// wantError checks lift's error body, {"error":"...","fields":[...]}; field, when not
// empty, must be named by the first field error.
func wantError(field string) func(t *testing.T, body []byte) {
	return func(t *testing.T, body []byte) {
		t.Helper()
		var e struct {
			Error  string `json:"error"`
			Fields []struct {
				Field   string `json:"field"`
				Message string `json:"message"`
			} `json:"fields"`
		}
		if err := json.Unmarshal(body, &e); err != nil || e.Error == "" {
			t.Fatalf("want {\"error\":...}, got %s (%v)", body, err)
		}
		if field != "" && (len(e.Fields) == 0 || e.Fields[0].Field != field) {
			t.Fatalf("want a field error naming %s, got %s", field, body)
		}
	}
}

func TestHealthHandlers(t *testing.T) {
	down := func(context.Context) map[string]error {
		return map[string]error{"postgres": errors.New("connection refused"), "clickhouse": nil}
	}
	// As cmd/lift reports a dead ClickHouse shard to an ingest or worker process.
	shardDown := func(context.Context) map[string]error {
		return map[string]error{"postgres": nil, "clickhouse": fmt.Errorf("%w: shard 2 of cluster lift down (ch3:9000: connection refused; ch4:9000: connection refused)", derrors.ErrUnavailable)}
	}
	tests := []struct {
		name   string
		opts   handlerOpts
		path   string
		status int
		want   string // JSON the body must contain (fields compared as given)
	}{
		{"healthz", handlerOpts{}, "/healthz", http.StatusOK, `{"status":"ok"}`},
		{"healthz before any snapshot", handlerOpts{noLoad: true}, "/healthz", http.StatusOK, `{"status":"ok"}`},
		{"readyz ok", handlerOpts{}, "/readyz", http.StatusOK, `{"status":"ok","checks":{}}`},
		{"readyz degraded keeps serving", handlerOpts{ready: down}, "/readyz", http.StatusOK,
			`{"status":"degraded","checks":{"postgres":"error: connection refused","clickhouse":"ok"}}`},
		{"readyz before any snapshot", handlerOpts{noLoad: true}, "/readyz", http.StatusServiceUnavailable, `{"status":"unavailable","checks":{}}`},
		{"readyz unavailable", handlerOpts{ready: shardDown}, "/readyz", http.StatusServiceUnavailable,
			`{"status":"unavailable","checks":{"postgres":"ok","clickhouse":"error: unavailable: shard 2 of cluster lift down (ch3:9000: connection refused; ch4:9000: connection refused)"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newTestHandler(t, tt.opts)
			rec := request{method: http.MethodGet, path: tt.path, auth: "none"}.do(t, h)
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.status, rec.Body)
			}
			wantMediaType(t, rec, "application/json")
			got := decodeObject(t, rec.Body.Bytes())
			var want map[string]any
			if err := json.Unmarshal([]byte(tt.want), &want); err != nil {
				t.Fatal(err)
			}
			for k, w := range want {
				wb, _ := json.Marshal(w)
				if !jsonEqual(t, got[k], string(wb)) {
					t.Errorf("%s = %v, want %s", k, got[k], wb)
				}
			}
			if tt.path != "/readyz" {
				return
			}
			snap, ok := got["snapshot"].(map[string]any)
			if !ok {
				t.Fatalf("readyz has no snapshot object: %s", rec.Body)
			}
			version, _ := snap["version"].(string)
			loaded, _ := snap["loaded_at"].(string)
			if version == "" || (loaded == "0001-01-01T00:00:00Z") != tt.opts.noLoad {
				t.Errorf("snapshot %v: want a version, and a zero loaded_at exactly when no snapshot was loaded", snap)
			}
		})
	}
}
