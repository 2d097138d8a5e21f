package web_test

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/liftlab/lift/experiments"
	"github.com/liftlab/lift/ingest"
	"github.com/liftlab/lift/web"
	"github.com/liftlab/lift/web/auth"
)

// GrowthBook's SDK protocol over the payload fixture of experiments/gbpayload (which
// also holds the test that the Go SDK evaluates that payload as lift decides).

const (
	gbClientKey = "lift_ck_growthbook_client"
	gbServerKey = "lift_sk_growthbook_server"
	gbPickyKey  = "lift_ck_growthbook_picky" // allows https://shop.example only
)

type gbKeys struct{}

func (gbKeys) Lookup(secret string) (auth.Key, bool) {
	switch secret {
	case gbClientKey:
		return auth.Key{ID: 1, Name: "c", Kind: auth.ClientKey}, true
	case gbServerKey:
		return auth.Key{ID: 2, Name: "s", Kind: auth.ServerKey}, true
	case gbPickyKey:
		return auth.Key{ID: 3, Name: "p", Kind: auth.ClientKey, AllowedOrigins: []string{"https://shop.example"}}, true
	}
	return auth.Key{}, false
}

// swapLoader serves a configuration the test can change, a fresh copy per load as a
// store's would be (NewSnapshot normalises documents in place).
type swapLoader struct {
	mu  sync.Mutex
	cfg []byte
}

func (l *swapLoader) LoadConfig(context.Context) (*experiments.Config, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var cfg experiments.Config
	err := json.Unmarshal(l.cfg, &cfg)
	return &cfg, err
}

func (l *swapLoader) set(cfg *experiments.Config) {
	data, _ := json.Marshal(cfg)
	l.mu.Lock()
	l.cfg = data
	l.mu.Unlock()
}

func gbConfig(t *testing.T) *experiments.Config {
	t.Helper()
	data, err := os.ReadFile("../experiments/gbpayload/testdata/config.json")
	if err != nil {
		t.Fatal(err)
	}
	var cfg experiments.Config
	if err := json.Unmarshal(data, &cfg); err != nil {
		t.Fatal(err)
	}
	return &cfg
}

// intent makes "u-intent" a member of high-intent.
type intent struct{}

func (intent) IsMember(segment, userID string) bool {
	return segment == "high-intent" && userID == "u-intent"
}

type exposureLog struct {
	mu sync.Mutex
	xs []ingest.Exposure
}

func (l *exposureLog) Log(userID string, x ingest.Exposure) {
	l.mu.Lock()
	l.xs = append(l.xs, x)
	l.mu.Unlock()
}

func (l *exposureLog) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.xs)
}

type gbFixture struct {
	loader    *swapLoader
	live      *experiments.Live
	handler   http.Handler
	exposures *exposureLog
	done      chan struct{}
}

func newGBFixture(t *testing.T, perKey int) *gbFixture {
	t.Helper()
	f := &gbFixture{loader: &swapLoader{}, exposures: &exposureLog{}, done: make(chan struct{})}
	f.loader.set(gbConfig(t))
	f.live = experiments.NewLive(f.loader)
	f.live.Members = intent{}
	if err := f.live.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.handler = web.New(web.Deps{
		Log: slog.New(slog.DiscardHandler), Snapshots: f.live, Keys: gbKeys{}, Registry: prometheus.NewRegistry(),
		MaxBodyBytes: 1 << 20, Exposures: f.exposures, StreamHeartbeat: 50 * time.Millisecond, StreamsPerKey: perKey,
		StreamsDone: f.done,
	})
	return f
}

func (f *gbFixture) do(t *testing.T, method, path, body string, header ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	f.handler.ServeHTTP(rec, req)
	checkOpenAPI(t, req, rec)
	return rec
}

type payload struct {
	Features map[string]struct {
		DefaultValue json.RawMessage `json:"defaultValue"`
		Rules        []struct {
			Force  json.RawMessage `json:"force"`
			Tracks []struct {
				Experiment struct {
					Key        string    `json:"key"`
					Weights    []float64 `json:"weights"`
					Phase      string    `json:"phase"`
					LiftLogged bool      `json:"liftLogged"`
				} `json:"experiment"`
				Result struct {
					Key              string `json:"key"`
					VariationID      int    `json:"variationId"`
					HashValue        string `json:"hashValue"`
					StickyBucketUsed bool   `json:"stickyBucketUsed"`
				} `json:"result"`
			} `json:"tracks"`
		} `json:"rules"`
	} `json:"features"`
	SavedGroups map[string][]any  `json:"savedGroups"`
	DateUpdated time.Time         `json:"dateUpdated"`
	Sticky      map[string]string `json:"sticky"`
}

func decodePayload(t *testing.T, body []byte) payload {
	t.Helper()
	var p payload
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	return p
}

func TestGrowthBookFeatures(t *testing.T) {
	f := newGBFixture(t, 0)
	rec := f.do(t, "GET", "/api/features/"+gbClientKey, "")
	if rec.Code != 200 {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	h := rec.Header()
	if h.Get("X-SSE-Support") != "enabled" || h.Get("ETag") == "" ||
		h.Get("Cache-Control") != "public, max-age=30, stale-while-revalidate=3600, stale-if-error=36000" {
		t.Fatalf("headers %v", h)
	}
	p := decodePayload(t, rec.Body.Bytes())
	if len(p.Features) != 13 || p.SavedGroups["eu"] == nil || p.DateUpdated.IsZero() {
		t.Fatalf("payload: %d features, groups %v, date %v", len(p.Features), p.SavedGroups, p.DateUpdated)
	}
	etag := h.Get("ETag")
	if rec := f.do(t, "GET", "/api/features/"+gbClientKey, "", "If-None-Match", etag); rec.Code != 304 {
		t.Fatalf("If-None-Match %s: %d", etag, rec.Code)
	}
	// Compressed for clients that accept it (every SDK does), as its own representation.
	gz := f.do(t, "GET", "/api/features/"+gbClientKey, "", "Accept-Encoding", "br, gzip;q=0.8")
	zr, err := gzip.NewReader(gz.Body)
	if err != nil {
		t.Fatalf("%v %v", err, gz.Header())
	}
	plain, err := io.ReadAll(zr)
	if err != nil || string(plain) != rec.Body.String() || gz.Header().Get("Content-Encoding") != "gzip" ||
		gz.Header().Get("ETag") == etag || !strings.Contains(strings.Join(gz.Header().Values("Vary"), ","), "Accept-Encoding") {
		t.Fatalf("gzip: %v, %d of %d bytes, headers %v", err, len(plain), rec.Body.Len(), gz.Header())
	}
	if rec := f.do(t, "GET", "/api/features/"+gbClientKey, "", "If-None-Match", gz.Header().Get("ETag"), "Accept-Encoding", "gzip"); rec.Code != 304 {
		t.Fatalf("If-None-Match of the gzipped payload: %d", rec.Code)
	}
	if rec := f.do(t, "GET", "/api/features/"+gbClientKey, "", "Accept-Encoding", "gzip;q=0"); rec.Header().Get("Content-Encoding") != "" {
		t.Fatal("gzip sent though refused")
	}

	// A browser on another origin may read the body and the streaming header.
	rec = f.do(t, "GET", "/api/features/"+gbClientKey, "", "Origin", "https://other.example")
	if rec.Header().Get("Access-Control-Allow-Origin") != "*" || !strings.Contains(rec.Header().Get("Access-Control-Expose-Headers"), "X-SSE-Support") {
		t.Fatalf("CORS headers %v", rec.Header())
	}

	// A change gives a new ETag and a later date; an unchanged reload neither.
	if err := f.live.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if rec := f.do(t, "GET", "/api/features/"+gbClientKey, "", "If-None-Match", etag); rec.Code != 304 {
		t.Fatalf("unchanged configuration: %d", rec.Code)
	}
	cfg := gbConfig(t)
	cfg.Flags[0].Default = json.RawMessage("true")
	f.loader.set(cfg)
	if err := f.live.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	rec = f.do(t, "GET", "/api/features/"+gbClientKey, "", "If-None-Match", etag)
	if rec.Code != 200 || rec.Header().Get("ETag") == etag {
		t.Fatalf("after a change: %d, ETag %s", rec.Code, rec.Header().Get("ETag"))
	}
	if q := decodePayload(t, rec.Body.Bytes()); !q.DateUpdated.After(p.DateUpdated) ||
		string(q.Features["free-shipping"].DefaultValue) != "true" {
		t.Fatalf("after a change: date %v (was %v), free-shipping %s", q.DateUpdated, p.DateUpdated, q.Features["free-shipping"].DefaultValue)
	}
}

// Unknown, revoked (the key ring no longer finds them) and server keys are refused on
// every endpoint of the protocol, and so are origins a key does not allow.
func TestGrowthBookKeys(t *testing.T) {
	f := newGBFixture(t, 0)
	for _, ep := range []struct{ method, path, body string }{
		{"GET", "/api/features/", ""},
		{"GET", "/sub/", ""},
		{"POST", "/api/eval/", `{"attributes":{"id":"u1"}}`},
	} {
		for _, tt := range []struct {
			key, origin string
			status      int
			says        string
		}{
			{"lift_ck_unknown", "", 401, "unknown or revoked"},
			{gbServerKey, "", 403, "server key must never be used in a URL"},
			{gbPickyKey, "https://evil.example", 403, "may not use this API key"},
		} {
			rec := f.do(t, ep.method, ep.path+tt.key, ep.body, "Origin", tt.origin)
			if rec.Code != tt.status || !strings.Contains(rec.Body.String(), tt.says) {
				t.Errorf("%s %s%s from %q: %d %s, want %d %q", ep.method, ep.path, tt.key, tt.origin, rec.Code, rec.Body, tt.status, tt.says)
			}
		}
	}
	if rec := f.do(t, "GET", "/api/features/"+gbPickyKey, "", "Origin", "https://shop.example"); rec.Code != 200 {
		t.Errorf("allowed origin: %d", rec.Code)
	}
}

// readEvent reads one server-sent event (its event name and data), skipping
// comments; it fails after limit.
func readEvent(t *testing.T, lines *bufio.Scanner, limit time.Duration) (name, data string, comments int) {
	t.Helper()
	got := make(chan struct{})
	go func() {
		defer close(got)
		for lines.Scan() {
			line := lines.Text()
			switch {
			case line == "" && name != "":
				return
			case strings.HasPrefix(line, ":"):
				comments++
			case strings.HasPrefix(line, "event: "):
				name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				data = strings.TrimPrefix(line, "data: ")
			}
		}
	}()
	select {
	case <-got:
	case <-time.After(limit):
		t.Fatalf("no event within %v", limit)
	}
	return name, data, comments
}

func TestGrowthBookStream(t *testing.T) {
	f := newGBFixture(t, 2)
	srv := httptest.NewServer(f.handler)
	defer srv.Close()
	open := func() (*http.Response, error) {
		return http.Get(srv.URL + "/sub/" + gbClientKey)
	}
	resp, err := open()
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("%d %v", resp.StatusCode, resp.Header)
	}
	lines := bufio.NewScanner(resp.Body)
	lines.Buffer(make([]byte, 1<<20), 1<<20)
	name, data, _ := readEvent(t, lines, time.Second)
	first := decodePayload(t, []byte(data))
	if name != "features" || len(first.Features) != 13 {
		t.Fatalf("first event %q with %d features", name, len(first.Features))
	}

	// A new bandit weight, like any change, reaches the stream within a second.
	cfg := gbConfig(t)
	cfg.BanditWeights = []experiments.BanditWeights{{Experiment: "reco", Variants: []string{"trending", "similar", "bestsellers"},
		Weights: []float64{0.6, 0.3, 0.1}}}
	f.loader.set(cfg)
	start := time.Now()
	if err := f.live.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	name, data, _ = readEvent(t, lines, time.Second)
	p := decodePayload(t, []byte(data))
	if name != "features" || !p.DateUpdated.After(first.DateUpdated) || !strings.Contains(data, `"weights":[0.6,0.3,0.1]`) {
		t.Fatalf("after the change (%v): %q %s", time.Since(start), name, data)
	}
	t.Logf("change pushed after %v", time.Since(start))

	// Idle, the stream gets heartbeats (every 50 ms here) and nothing else.
	time.Sleep(200 * time.Millisecond)
	if err := f.live.Reload(context.Background()); err != nil { // same configuration: no event
		t.Fatal(err)
	}
	f.loader.set(gbConfig(t))
	if err := f.live.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, data, comments := readEvent(t, lines, time.Second)
	if comments < 2 || strings.Contains(data, `"weights":[0.6,0.3,0.1]`) {
		t.Fatalf("%d heartbeats in 200 ms; the next event is not the last change's: %.200s", comments, data)
	}

	// Two streams per key here: the third is refused until one closes.
	second, err := open()
	if err != nil {
		t.Fatal(err)
	}
	defer second.Body.Close()
	third, err := open()
	if err != nil {
		t.Fatal(err)
	}
	third.Body.Close()
	if third.StatusCode != http.StatusTooManyRequests || third.Header.Get("Retry-After") == "" {
		t.Fatalf("third stream: %d %v", third.StatusCode, third.Header)
	}

	// Shutting down ends the streams.
	close(f.done)
	ended := make(chan struct{})
	go func() {
		for lines.Scan() {
		}
		close(ended)
	}()
	select {
	case <-ended:
	case <-time.After(time.Second):
		t.Fatal("the stream outlived StreamsDone")
	}
}

func TestGrowthBookRemoteEval(t *testing.T) {
	f := newGBFixture(t, 0)
	snap := f.live.Snapshot()
	for _, user := range []map[string]any{
		{"id": "u-intent", "country": "US", "device": "mobile", "visits": 0.0, "plan": "pro", "age": 40.0},
		{"id": "u-2", "country": "DE", "device": "desktop", "visits": 4.0, "plan": "free", "age": 20.0},
		{"id": "用户-3", "country": "CA", "device": "mobile", "visits": 2.0, "plan": "free", "age": 33.0},
	} {
		body, _ := json.Marshal(map[string]any{"attributes": user, "forcedVariations": map[string]any{}, "forcedFeatures": []any{}, "url": ""})
		before := f.exposures.len()
		rec := f.do(t, "POST", "/api/eval/"+gbClientKey, string(body))
		if rec.Code != 200 || rec.Header().Get("Cache-Control") != "no-store" {
			t.Fatalf("%d %v %s", rec.Code, rec.Header(), rec.Body)
		}
		p := decodePayload(t, rec.Body.Bytes())
		assigned := map[string]bool{} // experiments: one exposure each, however many flags run them
		for _, d := range snap.Decide(user["id"].(string), user, nil, nil) {
			got := p.Features[d.Key]
			if !jsonEqualBytes(got.DefaultValue, d.Value) {
				t.Errorf("%s %s: %s, decide %s", user["id"], d.Key, got.DefaultValue, d.Value)
			}
			if !d.Assigned {
				if len(got.Rules) != 0 {
					t.Errorf("%s %s: rules %+v for a user decide did not assign", user["id"], d.Key, got.Rules)
				}
				continue
			}
			assigned[d.ExperimentKey] = true
			tr := got.Rules[0].Tracks[0]
			if tr.Experiment.Key != d.ExperimentKey || tr.Result.Key != d.Variant || tr.Experiment.Phase != d.Segment ||
				tr.Experiment.Weights[tr.Result.VariationID] != d.Probability || !tr.Experiment.LiftLogged || tr.Result.HashValue != user["id"] {
				t.Errorf("%s %s: track %+v, decide %+v", user["id"], d.Key, tr, d.Decision)
			}
		}
		if user["id"] == "u-intent" && string(p.Features["discount"].DefaultValue) != `"INTENT15"` {
			t.Errorf("the behavioural segment's member got discount %s", p.Features["discount"].DefaultValue)
		}
		if n := f.exposures.len() - before; n != len(assigned) || len(assigned) == 0 {
			t.Errorf("%s: %d exposures logged, %d experiments assigned", user["id"], n, len(assigned))
		}
	}

	// Sticky bandit arms: the document of one answer, sent back as lift_sticky, keeps
	// the arm whatever the weights say.
	rec := f.do(t, "POST", "/api/eval/"+gbClientKey, `{"attributes":{"id":"u-2","visits":4}}`)
	p := decodePayload(t, rec.Body.Bytes())
	arm := p.Sticky["reco"]
	other := map[string]string{"trending": "similar", "similar": "trending", "bestsellers": "trending"}[arm]
	rec = f.do(t, "POST", "/api/eval/"+gbClientKey, `{"attributes":{"id":"u-2","visits":4,"lift_sticky":{"reco":"`+other+`"}}}`)
	p = decodePayload(t, rec.Body.Bytes())
	if arm == "" || p.Sticky["reco"] != other || p.Features["reco"].Rules[0].Tracks[0].Result.Key != other ||
		!p.Features["reco"].Rules[0].Tracks[0].Result.StickyBucketUsed {
		t.Fatalf("sticky %q → %q: %s", arm, other, rec.Body)
	}

	// Without analytics consent nothing is logged, and the tracks say so.
	before := f.exposures.len()
	rec = f.do(t, "POST", "/api/eval/"+gbClientKey, `{"attributes":{"id":"u-2","consent":{"analytics":false,"personalization":true}}}`)
	p = decodePayload(t, rec.Body.Bytes())
	if f.exposures.len() != before || p.Features["hero"].DefaultValue == nil || p.Features["checkout"].Rules != nil && p.Features["checkout"].Rules[0].Tracks[0].Experiment.LiftLogged {
		t.Fatalf("without analytics consent: %d exposures, %s", f.exposures.len()-before, rec.Body)
	}
}

func jsonEqualBytes(a, b json.RawMessage) bool {
	var x, y any
	return json.Unmarshal(a, &x) == nil && json.Unmarshal(b, &y) == nil && reflect.DeepEqual(x, y)
}

func TestGrowthBookRemoteEvalBadInput(t *testing.T) {
	f := newGBFixture(t, 0)
	for _, tt := range []struct{ body, field string }{
		{`{"attributes":`, "malformed JSON"},
		{`[]`, "must be a JSON object"},
		{`{}`, "attributes"},
		{`{"attributes":{"country":"US"}}`, "attributes.id"},
		{`{"attributes":{"id":42}}`, "attributes.id"},
		{`{"attributes":{"id":""}}`, "attributes.id"},
		{`{"attributes":{"id":"` + strings.Repeat("x", 257) + `"}}`, "attributes.id"},
		{`{"attributes":{"id":"u1","consent":{"analytics":"yes"}}}`, "attributes.consent"},
		{`{"attributes":{"id":"u1","lift_sticky":["a"]}}`, "attributes.lift_sticky"},
		{`{"attributes":{"id":"u1","lift_sticky":{"reco":1}}}`, "attributes.lift_sticky.reco"},
		{`{"attributes":"u1"}`, "attributes"},
	} {
		rec := f.do(t, "POST", "/api/eval/"+gbClientKey, tt.body)
		if rec.Code != 400 || !strings.Contains(rec.Body.String(), tt.field) {
			t.Errorf("%s: %d %s, want 400 naming %s", tt.body, rec.Code, rec.Body, tt.field)
		}
	}
}

func TestDecideReturnsSegments(t *testing.T) {
	f := newGBFixture(t, 0)
	body := `{"user_id":"u-intent","attributes":{"device":"mobile","visits":1},"segments":true,"track":false}`
	req := httptest.NewRequest("POST", "/v1/decide", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+gbClientKey)
	rec := httptest.NewRecorder()
	f.handler.ServeHTTP(rec, req)
	checkOpenAPI(t, req, rec)
	var out struct {
		Segments []string `json:"segments"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || strings.Join(out.Segments, ",") != "high-intent,mobile,new" {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
}

// Access logs name the route of GrowthBook's endpoints, never the key in the path.
func TestGrowthBookKeysStayOutOfLogs(t *testing.T) {
	var out syncBuffer
	f := newGBFixture(t, 0)
	f.handler = web.New(web.Deps{Log: slog.New(slog.NewJSONHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Snapshots: f.live, Keys: gbKeys{}, Registry: prometheus.NewRegistry(), MaxBodyBytes: 1 << 20})
	f.do(t, "GET", "/api/features/"+gbClientKey, "")
	f.do(t, "GET", "/api/features/"+gbServerKey, "")
	f.do(t, "POST", "/api/eval/"+gbServerKey, `{"attributes":{"id":"u1"}}`)
	out.mu.Lock()
	logged := out.buf.String()
	out.mu.Unlock()
	if !strings.Contains(logged, `"route":"/api/features/:key"`) || strings.Contains(logged, gbServerKey) || strings.Contains(logged, gbClientKey) {
		t.Fatalf("access log:\n%s", logged)
	}
}
