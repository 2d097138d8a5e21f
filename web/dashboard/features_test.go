package dashboard_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/liftlab/lift/experiments"
	"github.com/liftlab/lift/web/auth"
)

// TestFeatures: an editor creates, lists and edits a feature, beside the segments;
// validation errors name the field; the list shows who reads the feature.
func TestFeatures(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	b := h.signedIn("ed@example.com", auth.Editor)
	if p := b.get("/features"); p.status != 200 || !hasTestID(p.body, "empty") || !strings.Contains(p.body, `href="/features"`) {
		t.Fatalf("empty list: %d", p.status)
	}
	b.get("/features/new")
	form := url.Values{"key": {"views_10m"}, "name": {"Views"}, "kind": {"count"}, "event": {"product_view"}, "within": {"forever"}}
	if p := b.post("/features", form); p.status != http.StatusUnprocessableEntity || !strings.Contains(p.body, "must be a duration") {
		t.Fatalf("bad window: %d", p.status)
	}
	form.Set("within", "10m")
	form.Set("where", `{"price":{"$gte":20}}`)
	if p := b.post("/features", form); p.status != http.StatusSeeOther || p.location != "/features" {
		t.Fatalf("create: %d %s", p.status, p.location)
	}
	doc, _ := h.svc.Get(t.Context(), experiments.KindFeature, "views_10m")
	if !sameJSON(doc, `{"key":"views_10m","name":"Views","kind":"count","event":"product_view","where":{"price":{"$gte":20}},"within":"10m"}`) {
		t.Errorf("stored %s", doc)
	}
	h.create(experiments.KindFlag, `{"key":"offer","type":"boolean","default":false,"rules":[{"condition":{"features.views_10m":{"$gte":3}},"value":true}]}`)
	p := b.get("/features")
	if !hasTestID(p.body, "feature-views_10m") || !strings.Contains(p.body, "product_view events where") || !strings.Contains(p.body, `href="/flags/offer"`) {
		t.Errorf("list lacks the feature, its definition or its user: %s", between(p.body, "<tbody>", "</tbody>"))
	}
	form = url.Values{"kind": {"last_n"}, "event": {"product_view, add_to_cart"}, "property": {"sku"}, "n": {"5"}, "within": {"1h"}}
	if p = b.post("/features/views_10m", form); p.status != http.StatusSeeOther {
		t.Fatalf("update: %d %s", p.status, between(p.body, "<main", "</main>"))
	}
	doc, _ = h.svc.Get(t.Context(), experiments.KindFeature, "views_10m")
	if !sameJSON(doc, `{"key":"views_10m","kind":"last_n","event":["product_view","add_to_cart"],"property":"sku","n":5,"within":"1h"}`) {
		t.Errorf("updated %s", doc)
	}
	if p = b.get("/features/views_10m"); !strings.Contains(p.body, "product_view, add_to_cart") || !hasTestID(p.body, "feature-form") {
		t.Error("edit page")
	}
	viewer := h.signedIn("vi@example.com", auth.Viewer)
	if p = viewer.post("/features/views_10m", form); p.status != http.StatusForbidden {
		t.Errorf("viewer update: %d", p.status)
	}
	if p = b.post("/features/views_10m/delete", url.Values{}); p.status != http.StatusSeeOther {
		t.Errorf("delete: %d", p.status)
	}
}
