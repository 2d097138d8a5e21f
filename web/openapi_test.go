package web_test

import (
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/liftlab/lift/internal/openapi"
	"github.com/liftlab/lift/web"
)

// Stubs make every optional part of the server non-nil, so that web.New registers
// every route; the route test never calls them.
type (
	stubResults    struct{ web.ResultsReader }
	stubBandits    struct{ web.BanditReporter }
	stubSegStats   struct{ web.SegmentStats }
	stubWebhooks   struct{ web.WebhookManager }
	stubEvents     struct{ web.EventPublisher }
	stubEventTypes struct{ web.EventTypeManager }
	stubGDPR       struct{ web.GDPR }
	stubRetention  struct{ web.RetentionManager }
	stubRecommend  struct{ web.Recommender }
	stubModels     struct{ web.RecommenderModels }
)

// allRoutes lists "METHOD /path" of every route lift registers (without the
// dashboard and the demo shop, which serve pages), paths in OpenAPI's {param} form.
func allRoutes(t *testing.T) []string {
	t.Helper()
	e := web.New(web.Deps{Log: slog.New(slog.DiscardHandler), Registry: prometheus.NewRegistry(), MaxBodyBytes: 1,
		Results: stubResults{}, Bandits: stubBandits{}, SegmentStats: stubSegStats{}, Webhooks: stubWebhooks{},
		Events: stubEvents{}, EventTypes: stubEventTypes{}, GDPR: stubGDPR{}, Retention: stubRetention{},
		Recommendations: stubRecommend{}, RecommenderModels: stubModels{}})
	param := regexp.MustCompile(`:([a-z_]+)`)
	var out []string
	for _, r := range e.Routes() {
		if !slices.Contains(methods, r.Method) || r.Name == web.FallbackRouteName {
			continue // echo's not-found handlers of groups; the 405 answers of wrong methods
		}
		out = append(out, r.Method+" "+param.ReplaceAllString(r.Path, "{$1}"))
	}
	sort.Strings(out)
	return slices.Compact(out)
}

var methods = []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch}

// TestOpenAPIRoutes fails when a registered route is missing from the OpenAPI
// document or a documented one is not registered.
func TestOpenAPIRoutes(t *testing.T) {
	doc := openAPI(t)
	var documented []string
	paths, _ := doc.Root["paths"].(map[string]any)
	for path, item := range paths {
		for method := range item.(map[string]any) {
			if m := strings.ToUpper(method); slices.Contains(methods, m) {
				documented = append(documented, m+" "+path)
			}
		}
	}
	sort.Strings(documented)
	registered := allRoutes(t)
	for _, r := range registered {
		if !slices.Contains(documented, r) {
			t.Errorf("registered but not in web/openapi.json: %s", r)
		}
	}
	for _, d := range documented {
		if !slices.Contains(registered, d) {
			t.Errorf("in web/openapi.json but not registered: %s", d)
		}
	}
}

// openAPI parses the embedded document, once.
func openAPI(t *testing.T) *openapi.Doc {
	t.Helper()
	doc, err := parsedOpenAPI()
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

var parsedOpenAPI = sync.OnceValues(func() (*openapi.Doc, error) { return openapi.Parse(web.OpenAPI()) })

// TestOpenAPIServed: /openapi.json serves the document, parseable, to any origin.
func TestOpenAPIServed(t *testing.T) {
	h := newTestHandler(t, handlerOpts{})
	rec := request{method: "GET", path: "/openapi.json", auth: "none", header: map[string]string{"Origin": "https://docs.example"}}.do(t, h)
	if rec.Code != 200 || rec.Body.String() != string(web.OpenAPI()) || rec.Header().Get("Access-Control-Allow-Origin") != "*" {
		t.Fatalf("%d %v", rec.Code, rec.Header())
	}
	if doc, err := openapi.Parse(rec.Body.Bytes()); err != nil || doc.Root["openapi"] != "3.1.0" {
		t.Fatalf("%v %v", err, doc)
	}
}
