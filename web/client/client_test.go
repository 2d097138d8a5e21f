package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/liftlab/lift/web/client"
)

// The client's own behaviour — cache, stale answers, retries, rejections — against a
// scripted HTTP server; client integration with a real lift is in
// cmd/lift/client_e2e_test.go.

func newClient(t *testing.T, url string, cfg client.Config) *client.Client {
	t.Helper()
	cfg.BaseURL, cfg.Key = url, "k"
	c, err := client.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestDecideCache(t *testing.T) {
	var calls atomic.Int32
	var down atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if down.Load() {
			http.Error(w, "down", http.StatusBadGateway)
			return
		}
		var req struct {
			UserID string `json:"user_id"`
			Track  bool   `json:"track"`
		}
		_ = json.NewDecoder(r.Body).Decode(&req)
		time.Sleep(20 * time.Millisecond) // so concurrent callers overlap
		_ = json.NewEncoder(w).Encode(map[string]any{"user_id": req.UserID,
			"decisions": map[string]any{"hero": map[string]any{"variant": "bold", "value": map[string]string{"img": "b.png"}, "reason": "split", "experiment": true}}})
	}))
	defer srv.Close()
	c := newClient(t, srv.URL, client.Config{CacheTTL: 200 * time.Millisecond, MaxStale: time.Hour})
	ctx := context.Background()

	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			d, err := c.Decide(ctx, "u1", map[string]any{"country": "US"})
			if err != nil || d.Variant("hero") != "bold" {
				t.Errorf("decide: %v %+v", err, d)
			}
		})
	}
	wg.Wait()
	if n := calls.Load(); n != 1 {
		t.Errorf("10 concurrent decides for one user made %d requests, want 1", n)
	}
	if _, err := c.Decide(ctx, "u2", nil); err != nil || calls.Load() != 2 {
		t.Errorf("another user: %v, %d requests", err, calls.Load())
	}
	var v struct{ Img string }
	if d, _ := c.Decide(ctx, "u1", map[string]any{"country": "US"}); !d.Value("hero", &v) || v.Img != "b.png" || d.Value("nope", &v) {
		t.Errorf("Value: %+v", v)
	}

	// Expired and lift failing: the stale answer, with ErrStale.
	time.Sleep(250 * time.Millisecond)
	down.Store(true)
	d, err := c.Decide(ctx, "u1", map[string]any{"country": "US"})
	if !errors.Is(err, client.ErrStale) || d.Variant("hero") != "bold" {
		t.Errorf("stale decide: %v %+v", err, d)
	}
	// Nothing cached: the error.
	var he *client.HTTPError
	if _, err := c.Decide(ctx, "u3", nil); !errors.As(err, &he) || he.Status != http.StatusBadGateway {
		t.Errorf("uncached decide while down: %v", err)
	}
}

func TestTrackRetriesAndRejections(t *testing.T) {
	var calls atomic.Int32
	var ids sync.Map
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var req struct{ Events []client.Event }
		_ = json.Unmarshal(body, &req)
		for _, e := range req.Events {
			ids.Store(e.ID, true)
		}
		switch calls.Add(1) {
		case 1:
			w.Header().Set("Retry-After", "1")
			http.Error(w, `{"message":"busy"}`, http.StatusServiceUnavailable)
		case 2:
			http.Error(w, `{"message":"slow down"}`, http.StatusTooManyRequests)
		default:
			w.WriteHeader(http.StatusAccepted)
			_, _ = io.WriteString(w, `{"accepted":1,"rejected":[{"index":1,"error":"value: is required for purchase events"}]}`)
		}
	}))
	defer srv.Close()
	c := newClient(t, srv.URL, client.Config{})
	start := time.Now()
	err := c.Track(context.Background(), client.Event{Type: "click", UserID: "u"}, client.Event{Type: "purchase", UserID: "u"})
	var rej *client.RejectedError
	if !errors.As(err, &rej) || len(rej.Rejected) != 1 || rej.Rejected[0].Index != 1 {
		t.Fatalf("Track: %v", err)
	}
	if calls.Load() != 3 || time.Since(start) < time.Second {
		t.Errorf("%d attempts in %v, want 3 honouring Retry-After: 1", calls.Load(), time.Since(start))
	}
	n := 0
	ids.Range(func(any, any) bool { n++; return true })
	if n != 2 {
		t.Errorf("retries used %d distinct event ids, want the same 2", n)
	}

	// Consent travels with the request.
	var body string
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		body = string(b)
		w.WriteHeader(http.StatusAccepted)
		_, _ = io.WriteString(w, `{"accepted":1,"rejected":[]}`)
	})
	if err := c.TrackConsent(context.Background(), client.Consent{Analytics: true}, client.Event{Type: "click", UserID: "u"}); err != nil ||
		!strings.Contains(body, `"consent":{"analytics":true,"personalization":false}`) {
		t.Errorf("TrackConsent: %v, body %s", err, body)
	}

	// A context that ends stops the retries.
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "down", http.StatusServiceUnavailable) })
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := c.Track(ctx, client.Event{Type: "click", UserID: "u"}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Track with a deadline while lift is down: %v", err)
	}
}

// When lift refused every event it answers 400 with the same list a 202 carries:
// that is a RejectedError too (a Batcher drops the batch rather than resend it for
// ever), while a 400 without the list stays an HTTPError.
func TestTrackAllRejected(t *testing.T) {
	answer := `{"error":"every event was rejected","accepted":0,"rejected":[{"index":0,"error":"value: must be a finite number between -1e12 and 1e12"}]}`
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, answer)
	}))
	defer srv.Close()
	c := newClient(t, srv.URL, client.Config{})
	err := c.Track(context.Background(), client.Event{Type: "purchase", UserID: "u", Value: 3e15})
	var rej *client.RejectedError
	if !errors.As(err, &rej) || len(rej.Rejected) != 1 || calls.Load() != 1 {
		t.Errorf("Track: %v after %d calls, want one RejectedError", err, calls.Load())
	}
	answer = `{"error":"malformed JSON body"}`
	var he *client.HTTPError
	if err := c.Track(context.Background(), client.Event{Type: "click", UserID: "u"}); !errors.As(err, &he) || he.Status != 400 || he.Message != "malformed JSON body" {
		t.Errorf("Track: %v, want HTTP 400 malformed JSON body", err)
	}
}

func TestBatcher(t *testing.T) {
	var mu sync.Mutex
	got := map[string]int{}
	var fail atomic.Int32
	fail.Store(2)
	sink := sinkFunc(func(ctx context.Context, events []client.Event) error {
		if fail.Add(-1) >= 0 {
			return errors.New("broker down")
		}
		mu.Lock()
		defer mu.Unlock()
		for _, e := range events {
			got[e.ID]++
		}
		return nil
	})
	b := client.NewBatcher(sink, client.BatcherOptions{Size: 7, Interval: 10 * time.Millisecond})
	for range 100 {
		if err := b.Add(client.Event{Type: "page_view", UserID: "u"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(got) != 100 {
		t.Errorf("delivered %d distinct events, want 100", len(got))
	}
	if err := b.Add(client.Event{Type: "page_view", UserID: "u"}); err != nil && !errors.Is(err, client.ErrQueueFull) {
		t.Errorf("Add after Close: %v", err)
	}

	// Close gives up when its context ends and hands the undelivered events over.
	var lost atomic.Int32
	down := client.NewBatcher(sinkFunc(func(context.Context, []client.Event) error { return errors.New("down") }),
		client.BatcherOptions{OnError: func(_ error, ev []client.Event) { lost.Add(int32(len(ev))) }})
	for range 5 {
		_ = down.Add(client.Event{Type: "click", UserID: "u"})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := down.Close(ctx); !errors.Is(err, context.DeadlineExceeded) || lost.Load() != 5 {
		t.Errorf("Close while the sink is down: %v, %d events reported lost", err, lost.Load())
	}
}

type sinkFunc func(ctx context.Context, events []client.Event) error

func (f sinkFunc) Send(ctx context.Context, events []client.Event) error { return f(ctx, events) }
