package web_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/liftlab/lift/web"
	"github.com/liftlab/lift/web/dashboard"
	"github.com/liftlab/lift/web/session"
)

// TestAPIAnswers: what a client of the API gets when it gets something wrong. Every
// answer under /v1, /ofrep and /api is JSON (a wrong method is 405, never the
// dashboard's login redirect), errors say what is expected, and they read as written
// (no \u003c escapes, no "invalid document:" prefix).
func TestAPIAnswers(t *testing.T) {
	// With the dashboard registered, as lift serve runs it: its catch-all must not
	// capture API paths.
	h := newOpsHandler(t, slog.New(slog.DiscardHandler), func(d *web.Deps) {
		d.Dashboard = dashboard.New(dashboard.Deps{Log: slog.New(slog.DiscardHandler), Sessions: session.New(nil, nil, 0)})
	})
	tests := []struct {
		name         string
		method, path string
		key, body    string
		status       int
		want         string // the JSON body, compared as a value
		allow        string // the Allow header of a 405
	}{
		{name: "GET /v1/decide", method: "GET", path: "/v1/decide", key: evClientKey, status: 405, allow: "POST",
			want: `{"error":"GET is not allowed on /v1/decide; use POST"}`},
		{name: "GET /v1/decide without a key", method: "GET", path: "/v1/decide", status: 405, allow: "POST",
			want: `{"error":"GET is not allowed on /v1/decide; use POST"}`},
		{name: "PUT /v1/events", method: "PUT", path: "/v1/events", key: evClientKey, status: 405, allow: "POST",
			want: `{"error":"PUT is not allowed on /v1/events; use POST"}`},
		{name: "GET on an OFREP flag", method: "GET", path: "/ofrep/v1/evaluate/flags/hero", key: evClientKey, status: 405, allow: "POST",
			want: `{"error":"GET is not allowed on /ofrep/v1/evaluate/flags/hero; use POST"}`},
		{name: "PATCH on the management API", method: "PATCH", path: "/api/v1/experiments", key: evServerKey, status: 405, allow: "GET, POST",
			want: `{"error":"PATCH is not allowed on /api/v1/experiments; use GET, POST"}`},
		{name: "unknown /v1 route", method: "POST", path: "/v1/decisions", key: evClientKey, status: 404,
			want: `{"error":"no API endpoint POST /v1/decisions (docs/api.md lists them)"}`},
		{name: "unknown /ofrep route", method: "GET", path: "/ofrep/v2/flags", status: 404,
			want: `{"error":"no API endpoint GET /ofrep/v2/flags (docs/api.md lists them)"}`},
		{name: "unknown /api route", method: "GET", path: "/api/v2/experiments", key: evServerKey, status: 404,
			want: `{"error":"no API endpoint GET /api/v2/experiments (docs/api.md lists them)"}`},
		{name: "unknown /api route, no key", method: "GET", path: "/api/v2/experiments", status: 401,
			want: `{"error":"missing API key: send Authorization: Bearer <key> or X-API-Key"}`},
		{name: "wrong method on the management API, client key", method: "PATCH", path: "/api/v1/experiments", key: evClientKey, status: 403,
			want: `{"error":"a client key cannot call this endpoint"}`},
		{name: "missing key, unescaped", method: "POST", path: "/v1/decide", body: `{"user_id":"u1"}`, status: 401,
			want: `{"error":"missing API key: send Authorization: Bearer <key> or X-API-Key"}`},
		{name: "numeric user_id", method: "POST", path: "/v1/decide", key: evClientKey, body: `{"user_id":7}`, status: 400,
			want: `{"error":"user_id: must be a string","fields":[{"field":"user_id","message":"must be a string"}]}`},
		{name: "keys not strings", method: "POST", path: "/v1/decide", key: evClientKey, body: `{"user_id":"u","keys":[1]}`, status: 400,
			want: `{"error":"keys: must be an array of strings","fields":[{"field":"keys","message":"must be an array of strings"}]}`},
		{name: "track not a boolean", method: "POST", path: "/v1/decide", key: evClientKey, body: `{"user_id":"u","track":"no"}`, status: 400,
			want: `{"error":"track: must be true or false","fields":[{"field":"track","message":"must be true or false"}]}`},
		{name: "decide body an array", method: "POST", path: "/v1/decide", key: evClientKey, body: `[{"user_id":"u"}]`, status: 400,
			want: `{"error":"(body): must be a JSON object such as {\"user_id\":\"u1\"}","fields":[{"field":"(body)","message":"must be a JSON object such as {\"user_id\":\"u1\"}"}]}`},
		{name: "unknown keys named", method: "POST", path: "/v1/decide", key: evClientKey,
			body: `{"user_id":"u1","keys":["nope","hero","<b>"],"track":false}`, status: 200},
		{name: "event with a numeric user_id", method: "POST", path: "/v1/events", key: evClientKey,
			body: `{"events":[{"type":"click","user_id":7}]}`, status: 400,
			want: `{"error":"every event was rejected","accepted":0,"rejected":[{"index":0,"error":"user_id: must be a string"}]}`},
		{name: "event with a numeric timestamp", method: "POST", path: "/v1/events", key: evClientKey,
			body: `{"events":[{"type":"click","user_id":"u","timestamp":1765094400000}]}`, status: 400,
			want: `{"error":"every event was rejected","accepted":0,"rejected":[{"index":0,"error":"timestamp: must be an RFC 3339 string such as 2026-01-02T15:04:05Z"}]}`},
		{name: "unknown event type, unescaped", method: "POST", path: "/v1/events", key: evClientKey,
			body: `{"events":[{"type":"<signup>","user_id":"u"}]}`, status: 400,
			want: `{"error":"every event was rejected","accepted":0,"rejected":[{"index":0,"error":"type: unknown event type \"<signup>\""}]}`},
		{name: "one event without the wrapper", method: "POST", path: "/v1/events", key: evClientKey,
			body: `{"type":"click","user_id":"u1"}`, status: 202, want: `{"accepted":1,"rejected":[]}`},
		{name: "one invalid event without the wrapper", method: "POST", path: "/v1/events", key: evClientKey,
			body: `{"type":"purchase","user_id":"u1"}`, status: 400,
			want: `{"error":"every event was rejected","accepted":0,"rejected":[{"index":0,"error":"value: is required for purchase events"}]}`},
		{name: "an object without events", method: "POST", path: "/v1/events", key: evClientKey,
			body: `{"user_id":"u1"}`, status: 400,
			want: `{"error":"events: is required: send {\"events\":[{\"type\":\"purchase\",\"user_id\":\"u1\",\"value\":12.5}]}, or one event object with a \"type\"","fields":[{"field":"events","message":"is required: send {\"events\":[{\"type\":\"purchase\",\"user_id\":\"u1\",\"value\":12.5}]}, or one event object with a \"type\""}]}`},
		{name: "events not an array", method: "POST", path: "/v1/events", key: evClientKey,
			body: `{"events":{"type":"click","user_id":"u1"}}`, status: 400,
			want: `{"error":"events: must be an array of event objects","fields":[{"field":"events","message":"must be an array of event objects"}]}`},
		{name: "a bare array", method: "POST", path: "/v1/events", key: evClientKey,
			body: `[{"type":"click","user_id":"u1"}]`, status: 400,
			want: `{"error":"(body): must be a JSON object: {\"events\":[...]} or one event","fields":[{"field":"(body)","message":"must be a JSON object: {\"events\":[...]} or one event"}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := send(h, tt.method, tt.path, tt.key, tt.body)
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.status, rec.Body)
			}
			if tt.method != "HEAD" {
				wantMediaType(t, rec, "application/json")
			}
			if got := rec.Header().Get("Allow"); got != tt.allow {
				t.Errorf("Allow %q, want %q", got, tt.allow)
			}
			if bytes.Contains(rec.Body.Bytes(), []byte(`\u003c`)) || bytes.Contains(rec.Body.Bytes(), []byte("invalid document")) {
				t.Errorf("body carries escapes or another layer's prefix: %s", rec.Body)
			}
			if tt.want != "" {
				var got, want any
				if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
					t.Fatalf("body is not JSON: %s", rec.Body)
				}
				if err := json.Unmarshal([]byte(tt.want), &want); err != nil {
					t.Fatal(err)
				}
				if d := cmp.Diff(want, got); d != "" {
					t.Errorf("body (-want +got):\n%s", d)
				}
			}
		})
	}
}

// TestDecideUnknownKeys: keys that no experiment or flag has are listed, in the order
// asked, and only when there are some (the answer is otherwise unchanged).
func TestDecideUnknownKeys(t *testing.T) {
	h := newTestHandler(t, handlerOpts{})
	for body, want := range map[string]string{
		`{"user_id":"u1","keys":["nope","new-checkout","<b>","max-items","nope2"]}`: `["nope","<b>","nope2"]`,
		`{"user_id":"u1","keys":["new-checkout"]}`:                                  ``,
		`{"user_id":"u1"}`:              ``,
		`{"user_id":"u1","keys":["x"]}`: `["x"]`,
	} {
		rec := request{method: http.MethodPost, path: "/v1/decide", body: strings.NewReader(body)}.do(t, h)
		if rec.Code != 200 {
			t.Fatalf("%s: status %d: %s", body, rec.Code, rec.Body)
		}
		var got struct {
			Decisions   map[string]json.RawMessage `json:"decisions"`
			UnknownKeys json.RawMessage            `json:"unknown_keys"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
			t.Fatalf("%s: %v: %s", body, err, rec.Body)
		}
		if string(got.UnknownKeys) != want {
			t.Errorf("%s: unknown_keys %s, want %s", body, got.UnknownKeys, want)
		}
		for _, k := range []string{"nope", "<b>", "x"} {
			if _, ok := got.Decisions[k]; ok {
				t.Errorf("%s: decided the unknown key %s", body, k)
			}
		}
	}
}
