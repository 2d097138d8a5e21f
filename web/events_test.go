package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/liftlab/lift/experiments"
	"github.com/liftlab/lift/ingest"
	"github.com/liftlab/lift/ingest/amqpbus"
	"github.com/liftlab/lift/ingest/chsink"
	"github.com/liftlab/lift/internal/derrors"
	"github.com/liftlab/lift/internal/testenv"
	"github.com/liftlab/lift/migrations"
	"github.com/liftlab/lift/web"
	"github.com/liftlab/lift/web/auth"
)

const (
	evClientKey = "lift_ck_events_test_client"
	evServerKey = "lift_sk_events_test_server"
)

type evKeys struct{}

func (evKeys) Lookup(secret string) (auth.Key, bool) {
	switch secret {
	case evClientKey:
		return auth.Key{ID: 1, Name: "c", Kind: auth.ClientKey}, true
	case evServerKey:
		return auth.Key{ID: 2, Name: "s", Kind: auth.ServerKey}, true
	}
	return auth.Key{}, false
}

type evPublisher struct {
	mu     sync.Mutex
	err    error
	events []ingest.Event
}

func (p *evPublisher) Publish(_ context.Context, events []ingest.Event) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return p.err
	}
	p.events = append(p.events, events...)
	return nil
}

type evExposures struct {
	mu  sync.Mutex
	got []ingest.Exposure
}

func (x *evExposures) Log(_ string, e ingest.Exposure) {
	x.mu.Lock()
	x.got = append(x.got, e)
	x.mu.Unlock()
}

type evLoader struct{ cfg *experiments.Config }

func (l evLoader) LoadConfig(context.Context) (*experiments.Config, error) { return l.cfg, nil }

func newEventsHandler(t *testing.T, pub web.EventPublisher, exp web.ExposureLogger) http.Handler {
	t.Helper()
	return newEventsHandlerRate(t, pub, exp, 0)
}

func newEventsHandlerRate(t *testing.T, pub web.EventPublisher, exp web.ExposureLogger, rate float64) http.Handler {
	t.Helper()
	return newOpsHandler(t, slog.New(slog.DiscardHandler), func(d *web.Deps) {
		d.Events, d.Exposures, d.EventsRate = pub, exp, rate
	})
}

func post(h http.Handler, path, key, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestCollect(t *testing.T) {
	now := time.Now().UTC().Format(time.RFC3339)
	tests := []struct {
		name       string
		key        string
		body       string
		brokerDown bool
		wantStatus int
		wantBody   string // JSON, compared as a value; "" = not checked
	}{
		{"accepted with per-event rejections", evClientKey,
			`{"events":[{"type":"page_view","user_id":"u1","timestamp":"` + now + `"},{"type":"purchase","user_id":"u1"},{"user_id":"u2","type":"teleport"}]}`,
			false, 202, `{"accepted":1,"rejected":[{"index":1,"error":"value: is required for purchase events"},{"index":2,"error":"type: unknown event type \"teleport\""}]}`},
		{"server keys may post", evServerKey, `{"events":[{"type":"click","user_id":"u"}]}`, false, 202, `{"accepted":1,"rejected":[]}`},
		{"empty batch", evClientKey, `{"events":[]}`, false, 202, `{"accepted":0,"rejected":[]}`},
		{"every event rejected", evClientKey, `{"events":[{"type":"purchase","user_id":"u1"},{"user_id":"u2","type":"teleport"}]}`, false, 400,
			`{"error":"every event was rejected","accepted":0,"rejected":[{"index":0,"error":"value: is required for purchase events"},{"index":1,"error":"type: unknown event type \"teleport\""}]}`},
		{"a client's received_at", evClientKey, `{"events":[{"type":"click","user_id":"u","received_at":"` + now + `"}]}`, false, 400,
			`{"error":"every event was rejected","accepted":0,"rejected":[{"index":0,"error":"received_at: is set by lift when it receives the event; leave it out"}]}`},
		{"a server key's received_at", evServerKey, `{"events":[{"type":"click","user_id":"u","received_at":"` + now + `"}]}`, false, 400, ""},
		{"value 3e15", evClientKey, `{"events":[{"type":"purchase","user_id":"u","value":3e15}]}`, false, 400,
			`{"error":"every event was rejected","accepted":0,"rejected":[{"index":0,"error":"value: must be a finite number between -1e12 and 1e12"}]}`},
		{"value 1e309", evClientKey, `{"events":[{"type":"purchase","user_id":"u","value":1e309}]}`, false, 400,
			`{"error":"every event was rejected","accepted":0,"rejected":[{"index":0,"error":"value: must be a finite number between -1e12 and 1e12"}]}`},
		{"value NaN", evClientKey, `{"events":[{"type":"purchase","user_id":"u","value":NaN}]}`, false, 400, `{"error":"malformed JSON body"}`},
		{"value Infinity as a string", evClientKey, `{"events":[{"type":"purchase","user_id":"u","value":"Infinity"}]}`, false, 400, ""},
		{"malformed", evClientKey, `{"events":[`, false, 400, ""},
		{"not a batch", evClientKey, `[{"type":"click"}]`, false, 400, ""},
		{"over the body limit", evClientKey, `{"events":[` + strings.Repeat(`{"type":"click","user_id":"u"},`, 200) + `{}]}`, false, 413, ""},
		{"no key", "", `{"events":[]}`, false, 401, ""},
		{"bad key", "nope", `{"events":[]}`, false, 401, ""},
		{"broker down", evClientKey, `{"events":[{"type":"click","user_id":"u"}]}`, true, 503, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pub := &evPublisher{}
			if tt.brokerDown {
				pub.err = fmt.Errorf("%w: not connected", derrors.ErrUnavailable)
			}
			rec := post(newEventsHandler(t, pub, &evExposures{}), "/v1/events", tt.key, tt.body)
			if rec.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d; body %s", rec.Code, tt.wantStatus, rec.Body)
			}
			if tt.wantStatus == 503 && rec.Header().Get("Retry-After") == "" {
				t.Error("503 without Retry-After")
			}
			if tt.wantBody != "" {
				var got, want any
				_ = json.Unmarshal(rec.Body.Bytes(), &got)
				_ = json.Unmarshal([]byte(tt.wantBody), &want)
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("body %s, want %s", rec.Body, tt.wantBody)
				}
			}
		})
	}
}

// The collector records which kind of key sent each event, whatever the event says:
// a client key's $identify cannot pass for a server key's.
func TestCollectSource(t *testing.T) {
	const identify = `{"type":"$identify","user_id":"mallory","source":"server","properties":{"anonymous_id":"victim"}}`
	for _, tt := range []struct {
		name, key, body string
		want            ingest.Source
	}{
		{"client key", evClientKey, `{"events":[` + identify + `]}`, ingest.SourceClient},
		{"client key in the body", "", `{"key":"` + evClientKey + `","source":"server","events":[` + identify + `]}`, ingest.SourceClient},
		{"server key", evServerKey, `{"events":[` + identify + `]}`, ingest.SourceServer},
	} {
		t.Run(tt.name, func(t *testing.T) {
			pub := &evPublisher{}
			if rec := post(newEventsHandler(t, pub, &evExposures{}), "/v1/events", tt.key, tt.body); rec.Code != http.StatusAccepted {
				t.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
			if len(pub.events) != 1 || pub.events[0].Source != tt.want {
				t.Errorf("published %+v, want source %q", pub.events, tt.want)
			}
		})
	}
}

func TestCollectRateLimit(t *testing.T) {
	h := newEventsHandlerRate(t, &evPublisher{}, &evExposures{}, 5) // bursts of 10
	codes := map[int]int{}
	for range 15 {
		codes[post(h, "/v1/events", evClientKey, `{"events":[]}`).Code]++
	}
	// The other key has its own budget.
	if rec := post(h, "/v1/events", evServerKey, `{"events":[]}`); rec.Code != 202 {
		t.Errorf("server key: status %d, want 202", rec.Code)
	}
	if codes[202] < 10 || codes[429] == 0 {
		t.Errorf("statuses %v, want 10 or so 202 then 429", codes)
	}
	rec := post(h, "/v1/events", evClientKey, `{"events":[]}`)
	if rec.Code != 429 || rec.Header().Get("Retry-After") == "" {
		t.Errorf("status %d, Retry-After %q; want 429 with Retry-After", rec.Code, rec.Header().Get("Retry-After"))
	}
}

func TestDecideLogsExposures(t *testing.T) {
	exp := &evExposures{}
	h := newEventsHandler(t, &evPublisher{}, exp)
	for _, body := range []string{`{"user_id":"u1"}`, `{"user_id":"u1","track":true}`, `{"user_id":"u1","track":false}`} {
		if rec := post(h, "/v1/decide", evClientKey, body); rec.Code != 200 {
			t.Fatalf("%s: status %d", body, rec.Code)
		}
	}
	if len(exp.got) != 2 || exp.got[0].Experiment != "hero" || exp.got[0].AssignmentProbability != 0.5 {
		t.Errorf("exposures %+v, want two for hero (track:false logs none)", exp.got)
	}
}

// While the broker is unreachable the collector answers 503 with Retry-After, and
// every event it answered 202 for reaches ClickHouse.
func TestCollectorBrokerOutage(t *testing.T) {
	url := testenv.AMQPURL(t)
	addr, db := testenv.ClickHouse(t)
	proxy := testenv.NewProxy(t, hostOf(t, url))
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	reg := prometheus.NewRegistry()
	m := ingest.NewMetrics(reg)
	pub := amqpbus.NewPublisher(strings.Replace(url, hostOf(t, url), proxy.Addr(), 1), quiet, m)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	wg.Go(func() { pub.Run(ctx) })
	sink, err := chsink.Open(addr, db)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sink.Close() })
	consumer := &amqpbus.Consumer{URL: url, Sink: sink, Log: quiet, Metrics: m, BatchWait: 100 * time.Millisecond}
	wg.Go(func() { consumer.Run(ctx) })
	testenv.Poll(10*time.Second, func() bool { return pub.Ready(ctx) == nil })
	srv := httptest.NewServer(newEventsHandler(t, pub, &evExposures{}))
	defer srv.Close()

	var (
		mu       sync.Mutex
		accepted []string // event ids answered 202
		statuses = map[int]int{}
		phase    = "before"
		byPhase  = map[string]map[int]int{"before": {}, "down": {}, "after": {}}
	)
	stop := make(chan struct{})
	var clients sync.WaitGroup
	for range 4 {
		clients.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				var ids []string
				var b strings.Builder
				b.WriteString(`{"events":[`)
				for i := range 20 {
					id := ingest.NewID().String()
					ids = append(ids, id)
					if i > 0 {
						b.WriteByte(',')
					}
					fmt.Fprintf(&b, `{"event_id":%q,"type":"click","user_id":"u%d"}`, id, i)
				}
				b.WriteString(`]}`)
				req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/events", strings.NewReader(b.String()))
				req.Header.Set("Authorization", "Bearer "+evClientKey)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				mu.Lock()
				statuses[resp.StatusCode]++
				byPhase[phase][resp.StatusCode]++
				if resp.StatusCode/100 == 2 {
					accepted = append(accepted, ids...)
				}
				if resp.StatusCode == 503 && resp.Header.Get("Retry-After") == "" {
					t.Error("503 without Retry-After")
				}
				mu.Unlock()
				if resp.StatusCode == 503 {
					time.Sleep(50 * time.Millisecond)
				}
			}
		})
	}
	setPhase := func(p string) { mu.Lock(); phase = p; mu.Unlock() }
	time.Sleep(time.Second)
	setPhase("down")
	proxy.Cut()
	time.Sleep(3 * time.Second)
	setPhase("after")
	proxy.Restore()
	time.Sleep(3 * time.Second)
	close(stop)
	clients.Wait()

	t.Logf("responses by phase: %v", byPhase)
	if byPhase["down"][503] == 0 || byPhase["after"][202] == 0 || byPhase["before"][202] == 0 {
		t.Fatalf("want 202s before, 503s during and 202s after the outage; got %v", byPhase)
	}
	for code := range statuses {
		if code != 202 && code != 503 {
			t.Errorf("unexpected status %d", code)
		}
	}
	ch := migrations.OpenClickHouse(addr, db)
	defer ch.Close()
	// Events answered 503 may be stored too (published but not confirmed in time);
	// what matters is that none answered 202 is missing.
	var missing int
	testenv.Poll(30*time.Second, func() bool {
		stored := map[string]bool{}
		rows, err := ch.Query("SELECT toString(event_id) FROM events FINAL")
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				t.Fatal(err)
			}
			stored[id] = true
		}
		rows.Close()
		missing = 0
		for _, id := range accepted {
			if !stored[id] {
				missing++
			}
		}
		return missing == 0
	})
	if missing != 0 {
		t.Fatalf("%d of %d events answered 202 never reached ClickHouse", missing, len(accepted))
	}
	t.Logf("all %d events answered 202 are in ClickHouse", len(accepted))
}

func hostOf(t *testing.T, amqpURL string) string {
	t.Helper()
	rest := amqpURL[strings.Index(amqpURL, "@")+1:]
	return rest[:strings.Index(rest, "/")]
}

// While RabbitMQ blocks publishing (a memory or disk alarm), the collector answers
// 503 with Retry-After at once and never 202; it accepts again once the alarm clears.
func TestCollectorBrokerAlarm(t *testing.T) {
	t.Parallel()
	url := testenv.AMQPURL(t)
	proxy := testenv.NewAlarmProxy(t, hostOf(t, url))
	reg := prometheus.NewRegistry()
	pub := amqpbus.NewPublisher(strings.Replace(url, hostOf(t, url), proxy.Addr(), 1),
		slog.New(slog.NewTextHandler(io.Discard, nil)), ingest.NewMetrics(reg))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { pub.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	if err := pub.WaitConnected(ctxTimeout(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	h := newEventsHandler(t, pub, &evExposures{})
	body := `{"events":[{"type":"click","user_id":"u1"}]}`
	status := func() *httptest.ResponseRecorder { return post(h, "/v1/events", evClientKey, body) }
	waitStatus := func(want int) *httptest.ResponseRecorder {
		t.Helper()
		var rec *httptest.ResponseRecorder
		if !testenv.Poll(10*time.Second, func() bool { rec = status(); return rec.Code == want }) {
			t.Fatalf("status %d (%s), want %d", rec.Code, rec.Body, want)
		}
		return rec
	}
	waitStatus(http.StatusAccepted)

	proxy.Alarm("low on memory")
	rec := waitStatus(http.StatusServiceUnavailable)
	if rec.Header().Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	if err := pub.Ready(ctx); err == nil || !strings.Contains(err.Error(), "low on memory") {
		t.Errorf("Ready while blocked = %v, want the alarm's reason", err)
	}
	for range 20 { // every request while the alarm lasts
		if rec := status(); rec.Code != http.StatusServiceUnavailable {
			t.Fatalf("status %d while blocked, want 503", rec.Code)
		}
	}

	proxy.ClearAlarm()
	waitStatus(http.StatusAccepted)
	if err := pub.Ready(ctx); err != nil {
		t.Errorf("Ready after the alarm cleared = %v", err)
	}
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
