package dashboard_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/liftlab/lift/web/auth"
)

// TestExperimentFormMinimum: a new experiment's form has sequential testing on, and
// the minimum users per variant and runtime before a verdict, which it validates,
// stores and shows again; an experiment saved with sequential off keeps it off.
func TestExperimentFormMinimum(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	b := h.signedIn("ed@example.com", auth.Editor)
	p := b.get("/experiments/new")
	if !strings.Contains(p.body, `name="sequential" checked`) || !strings.Contains(p.body, `name="min_users"`) || !strings.Contains(p.body, `name="min_runtime"`) {
		t.Fatalf("new form: sequential not on by default, or no minimum fields")
	}
	form := url.Values{
		"key": {"hero"}, "name": {"Hero"}, "type": {"ab"}, "coverage": {"100"},
		"variant_key": {"a", "b"}, "variant_name": {"", ""}, "variant_weight": {"", ""}, "variant_value": {"", ""},
		"target_mode": {"builder"}, "rule_attr": {""}, "rule_op": {"$eq"}, "rule_value": {""},
		"goal_event": {"purchase"}, "goal_kind": {"conversion"}, "correction": {"none"}, "cuped": {"on"},
		"min_users": {"lots"}, "min_runtime": {"a while"}, "op": {"save"},
	}
	p = b.post("/experiments", form)
	if p.status != http.StatusUnprocessableEntity || !strings.Contains(p.body, "<strong>Minimum users per variant</strong> must") || !strings.Contains(p.body, "<strong>Minimum runtime</strong> must") {
		t.Fatalf("bad minimum: %d", p.status)
	}
	form.Set("min_users", "2,500")
	form.Set("min_runtime", "3d")
	if p = b.post("/experiments", form); p.status != http.StatusSeeOther {
		t.Fatalf("save: %d\n%s", p.status, p.body)
	}
	e := storedExperiment(t, h, "hero")
	if e.SequentialTesting() || e.MinUsers() != 2500 || e.Analysis.MinRuntime != "72h" {
		t.Errorf("stored: sequential %v, minimum %d users, runtime %q", e.SequentialTesting(), e.MinUsers(), e.Analysis.MinRuntime)
	}
	p = b.get("/experiments/hero/edit")
	if !strings.Contains(p.body, `value="2500"`) || !strings.Contains(p.body, `value="3d"`) || strings.Contains(p.body, `name="sequential" checked`) {
		t.Errorf("edit form does not show the stored analysis")
	}
	form.Set("min_runtime", "0")
	form.Set("sequential", "on")
	if p = b.post("/experiments/hero", form); p.status != http.StatusSeeOther {
		t.Fatalf("update: %d\n%s", p.status, p.body)
	}
	if e := storedExperiment(t, h, "hero"); !e.SequentialTesting() || e.MinRuntime() != 0 {
		t.Errorf("updated: sequential %v, runtime %v", e.SequentialTesting(), e.MinRuntime())
	}
}
