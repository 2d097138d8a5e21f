package web_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestBodyKey: the browser SDK's beacons carry the client key in the body of
// POST /v1/events as text/plain; server keys are refused there, and the key is read
// from nowhere else.
func TestBodyKey(t *testing.T) {
	tests := []struct {
		name, path, body string
		wantStatus       int
		wantPublished    int
	}{
		{"client key in the body", "/v1/events", `{"key":"` + evClientKey + `","events":[{"type":"click","user_id":"u"}]}`, 202, 1},
		{"key after the events", "/v1/events", `{"events":[{"type":"click","user_id":"u"}],"consent":{"analytics":true},"key":"` + evClientKey + `"}`, 202, 1},
		{"server key in the body", "/v1/events", `{"key":"` + evServerKey + `","events":[{"type":"click","user_id":"u"}]}`, 403, 0},
		{"unknown key in the body", "/v1/events", `{"key":"nope","events":[{"type":"click","user_id":"u"}]}`, 401, 0},
		{"no key at all", "/v1/events", `{"events":[{"type":"click","user_id":"u"}]}`, 401, 0},
		{"malformed body, no key", "/v1/events", `{"key":`, 401, 0},
		{"decide does not read body keys", "/v1/decide", `{"key":"` + evClientKey + `","user_id":"u"}`, 401, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pub := &evPublisher{}
			h := newEventsHandler(t, pub, &evExposures{})
			req := httptest.NewRequest(http.MethodPost, tt.path, strings.NewReader(tt.body))
			req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
			req.Header.Set("Origin", "https://shop.example")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.wantStatus, rec.Body)
			}
			if len(pub.events) != tt.wantPublished {
				t.Errorf("published %d events, want %d", len(pub.events), tt.wantPublished)
			}
			if got := rec.Header().Get("Access-Control-Allow-Origin"); got != "*" {
				t.Errorf("Access-Control-Allow-Origin %q, want *", got)
			}
		})
	}
}

// TestBrowserCORS: a page on another origin may call the client endpoints and load
// lift.js; the management API answers no CORS headers.
func TestBrowserCORS(t *testing.T) {
	h := newEventsHandler(t, &evPublisher{}, &evExposures{})
	preflight := func(path string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodOptions, path, nil)
		req.Header.Set("Origin", "https://shop.example")
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "authorization,content-type")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	for _, path := range []string{"/v1/decide", "/v1/events", "/ofrep/v1/evaluate/flags", "/ofrep/v1/evaluate/flags/hero"} {
		rec := preflight(path)
		if rec.Code != http.StatusNoContent || rec.Header().Get("Access-Control-Allow-Origin") != "*" ||
			!strings.Contains(strings.ToLower(rec.Header().Get("Access-Control-Allow-Headers")), "authorization") ||
			rec.Header().Get("Access-Control-Max-Age") != "600" {
			t.Errorf("preflight of %s: %d %v", path, rec.Code, rec.Header())
		}
	}
	if rec := preflight("/api/v1/experiments"); rec.Header().Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("management API answers CORS: %v", rec.Header())
	}

	req := httptest.NewRequest(http.MethodGet, "/static/lift.js", nil)
	req.Header.Set("Origin", "https://shop.example")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 200 || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/javascript") ||
		rec.Header().Get("Access-Control-Allow-Origin") != "*" || !strings.Contains(rec.Body.String(), "export function init") {
		t.Fatalf("GET /static/lift.js: %d %v", rec.Code, rec.Header())
	}
	req = httptest.NewRequest(http.MethodGet, "/static/lift.js", nil)
	req.Header.Set("If-None-Match", rec.Header().Get("ETag"))
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusNotModified {
		t.Errorf("revalidating lift.js: %d, want 304", rec.Code)
	}
}
