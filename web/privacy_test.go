package web_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/liftlab/lift/experiments"
	"github.com/liftlab/lift/ingest/gdpr"
	"github.com/liftlab/lift/internal/derrors"
	"github.com/liftlab/lift/web"
)

type fakeGDPR struct{ erased, exported, included []string }

func (f *fakeGDPR) Request(_ context.Context, actor, userID string, include []string) (gdpr.Job, []gdpr.Link, error) {
	if len(userID) > gdpr.MaxUserIDLen {
		return gdpr.Job{}, nil, derrors.BadRequest("user_id", "must be at most 256 bytes")
	}
	f.erased = append(f.erased, userID)
	f.included = append(f.included, include...)
	return gdpr.Job{ID: "job-1", Status: gdpr.StatusPending, RequestedBy: actor}, []gdpr.Link{{ID: "anon", Sources: []string{"client"}}}, nil
}
func (f *fakeGDPR) Export(_ context.Context, _, userID string, include []string) (gdpr.Export, error) {
	f.exported = append(f.exported, userID)
	f.included = append(f.included, include...)
	return gdpr.Export{UserID: userID}, nil
}
func (f *fakeGDPR) Job(_ context.Context, id string) (gdpr.Job, error) {
	if id != "job-1" {
		return gdpr.Job{}, derrors.ErrNotFound
	}
	return gdpr.Job{ID: id, Status: gdpr.StatusDone}, nil
}
func (f *fakeGDPR) List(context.Context, int) ([]gdpr.Job, error) {
	return []gdpr.Job{{ID: "job-1"}}, nil
}

// User ids reach the erasure and the export exactly as the application knows them,
// whatever characters they hold.
func TestEraseAndExportRoutes(t *testing.T) {
	g := &fakeGDPR{}
	live := experiments.NewLive(evLoader{&experiments.Config{}})
	if err := live.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	h := web.New(web.Deps{
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Snapshots: live, Keys: evKeys{},
		Ready: func(context.Context) map[string]error { return nil }, Registry: prometheus.NewRegistry(), MaxBodyBytes: 4096,
		GDPR: g,
	})
	do := func(method, path, key string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, path, nil)
		req.Header.Set("Authorization", "Bearer "+key)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	ids := []string{"alice@example.com", "a/b", "100%", "ü ñ", "a+b"}
	for _, id := range ids {
		escaped := strings.NewReplacer("%", "%25", "/", "%2F", " ", "%20", "+", "%2B").Replace(id)
		rec := do(http.MethodDelete, "/api/v1/users/"+escaped, evServerKey)
		var j struct{ ID, URL string }
		if rec.Code != http.StatusAccepted || json.Unmarshal(rec.Body.Bytes(), &j) != nil || j.URL != "/api/v1/erasures/job-1" ||
			rec.Header().Get("Location") != j.URL {
			t.Errorf("DELETE %s: %d %s", escaped, rec.Code, rec.Body)
		}
		if rec := do(http.MethodGet, "/api/v1/users/"+escaped+"/export", evServerKey); rec.Code != 200 {
			t.Errorf("export %s: %d", escaped, rec.Code)
		}
	}
	if strings.Join(g.erased, "|") != strings.Join(ids, "|") || strings.Join(g.exported, "|") != strings.Join(ids, "|") {
		t.Errorf("erased %q, exported %q, want %q", g.erased, g.exported, ids)
	}
	for path, want := range map[string]int{"/api/v1/erasures/job-1": 200, "/api/v1/erasures/nope": 404, "/api/v1/erasures": 200} {
		if rec := do(http.MethodGet, path, evServerKey); rec.Code != want {
			t.Errorf("GET %s: %d, want %d", path, rec.Code, want)
		}
	}
	if rec := do(http.MethodDelete, "/api/v1/users/"+strings.Repeat("x", 300), evServerKey); rec.Code != 400 || !strings.Contains(rec.Body.String(), "user_id") {
		t.Errorf("long id: %d %s", rec.Code, rec.Body)
	}
	// Linked ids the operator confirms: include, repeated; the answer lists those
	// not followed.
	g.included = nil
	rec := do(http.MethodDelete, "/api/v1/users/alice?include=a%2Fb&include=lp_x", evServerKey)
	var answer struct {
		UnconfirmedLinks []gdpr.Link `json:"unconfirmed_links"`
	}
	if rec.Code != http.StatusAccepted || json.Unmarshal(rec.Body.Bytes(), &answer) != nil || len(answer.UnconfirmedLinks) != 1 ||
		answer.UnconfirmedLinks[0].ID != "anon" {
		t.Errorf("erase with include: %d %s", rec.Code, rec.Body)
	}
	if rec := do(http.MethodGet, "/api/v1/users/alice/export?include=anon", evServerKey); rec.Code != 200 {
		t.Errorf("export with include: %d", rec.Code)
	}
	if strings.Join(g.included, "|") != "a/b|lp_x|anon" {
		t.Errorf("included %q", g.included)
	}
	if rec := do(http.MethodGet, "/api/v1/users/alice/export?include=", evServerKey); rec.Code != 400 || !strings.Contains(rec.Body.String(), "include") {
		t.Errorf("empty include: %d %s", rec.Code, rec.Body)
	}
	for _, path := range []string{"/api/v1/users/alice", "/api/v1/users/alice/export", "/api/v1/erasures"} {
		method := http.MethodGet
		if !strings.Contains(path, "export") && !strings.Contains(path, "erasures") {
			method = http.MethodDelete
		}
		if rec := do(method, path, evClientKey); rec.Code != http.StatusForbidden {
			t.Errorf("client key on %s %s: %d", method, path, rec.Code)
		}
	}
}

type fakeRetention struct{ web.RetentionManager }

// Client keys ship in browsers: every route of the management API refuses them,
// including routes added later (the test walks the router). GrowthBook's SDK protocol
// (/api/features, /api/eval, /sub) takes client keys in the path: growthbook_test.go.
func TestClientKeysOnlyDecideAndSend(t *testing.T) {
	live := experiments.NewLive(evLoader{&experiments.Config{}})
	if err := live.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	e := web.New(web.Deps{
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Snapshots: live, Keys: evKeys{},
		Ready: func(context.Context) map[string]error { return nil }, Registry: prometheus.NewRegistry(), MaxBodyBytes: 4096,
		GDPR: &fakeGDPR{}, Retention: fakeRetention{},
		Results: struct{ web.ResultsReader }{}, Bandits: struct{ web.BanditReporter }{},
		SegmentStats: struct{ web.SegmentStats }{}, EventTypes: struct{ web.EventTypeManager }{},
	})
	var api, client []string
	for _, r := range e.Routes() {
		path := r.Path
		for _, seg := range strings.Split(r.Path, "/") {
			if strings.HasPrefix(seg, ":") {
				path = strings.Replace(path, seg, "x", 1)
			}
		}
		switch {
		case strings.HasPrefix(r.Path, "/api/v1/"):
			api = append(api, r.Method+" "+r.Path)
			for key, want := range map[string]int{evClientKey: http.StatusForbidden, "": http.StatusUnauthorized} {
				req := httptest.NewRequest(r.Method, path, strings.NewReader("{}"))
				if key != "" {
					req.Header.Set("Authorization", "Bearer "+key)
				}
				rec := httptest.NewRecorder()
				e.ServeHTTP(rec, req)
				if rec.Code != want {
					t.Errorf("%s %s with key %q: %d, want %d", r.Method, r.Path, key, rec.Code, want)
				}
			}
		case r.Method != http.MethodOptions && r.Method != "echo_route_not_found" && !strings.HasPrefix(r.Path, "/v1/") &&
			!strings.HasPrefix(r.Path, "/ofrep/") && r.Path != "/healthz" && r.Path != "/readyz" && r.Path != "/metrics" &&
			!strings.HasPrefix(r.Path, "/static/") && !strings.HasPrefix(r.Path, "/api/features/") &&
			!strings.HasPrefix(r.Path, "/api/eval/") && !strings.HasPrefix(r.Path, "/sub/") && r.Path != "/openapi.json":
			client = append(client, r.Method+" "+r.Path)
		}
	}
	if len(api) < 30 {
		t.Errorf("only %d management routes found: %v", len(api), api)
	}
	if len(client) > 0 {
		t.Errorf("routes outside /v1, /ofrep and /api: %v", client)
	}
}
