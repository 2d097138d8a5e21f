package dashboard_test

import (
	"encoding/json"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/liftlab/lift/experiments"
	"github.com/liftlab/lift/ingest"
	ingestpg "github.com/liftlab/lift/ingest/pgstore"
	"github.com/liftlab/lift/ingest/typereg"
	"github.com/liftlab/lift/web/auth"
	"github.com/liftlab/lift/web/dashboard"
)

// typesHarness is the dashboard with the event types of its database, readable and
// registrable.
func typesHarness(t *testing.T) *harness {
	return newHarnessDeps(t, func(_ experiments.Store, pool *pgxpool.Pool, d *dashboard.Deps) {
		d.EventTypes = ingestpg.New(pool)
		d.TypeCreator = typereg.NewService(ingestpg.New(pool))
	})
}

// follow loads where a redirect points.
func (b *browser) follow(p page) page {
	b.h.t.Helper()
	if p.status != http.StatusSeeOther {
		b.h.t.Fatalf("want a redirect, got %d\n%.2000s", p.status, p.body)
	}
	return b.get(p.location)
}

// text is the text of the element with data-testid id, nested elements included (""
// when there is none).
func text(body, id string) string {
	at := strings.Index(body, `data-testid="`+id+`"`)
	if at < 0 {
		return ""
	}
	open := strings.LastIndexByte(body[:at], '<')
	tag := regexp.MustCompile(`^<(\w+)`).FindStringSubmatch(body[open:])[1]
	start := at + strings.IndexByte(body[at:], '>') + 1
	depth, i := 1, start
	for depth > 0 {
		next := strings.Index(body[i:], "<")
		if next < 0 {
			return ""
		}
		i += next
		switch {
		case strings.HasPrefix(body[i:], "</"+tag+">"):
			depth--
		case strings.HasPrefix(body[i:], "<"+tag+">") || strings.HasPrefix(body[i:], "<"+tag+" "):
			depth++
		}
		i++
	}
	inner := body[start : i-1]
	return strings.Join(strings.Fields(html.UnescapeString(regexp.MustCompile(`<[^>]*>`).ReplaceAllString(inner, " "))), " ")
}

// TestEventTypesPageAgreesWithCollector: the built-in types the page names are
// exactly the ones the collector accepts without a schema, and an editor registers a
// custom type from the page.
func TestEventTypesPageAgreesWithCollector(t *testing.T) {
	t.Parallel()
	h := typesHarness(t)
	viewer := h.signedIn("viewer@example.com", auth.Viewer)
	p := viewer.get("/event-types")
	var listed []string
	for _, m := range regexp.MustCompile(`data-testid="builtin-type-([^"]+)"`).FindAllStringSubmatch(p.body, -1) {
		listed = append(listed, html.UnescapeString(m[1]))
	}
	if !slices.Equal(listed, ingest.BuiltinTypes()) {
		t.Errorf("page lists built-ins %v, want %v", listed, ingest.BuiltinTypes())
	}
	for _, name := range listed {
		raw, _ := json.Marshal(map[string]any{"type": name, "user_id": "u", "value": 1,
			"properties": map[string]any{"experiment": "e", "variant": "v", "assignment_probability": 0.5, "anonymous_id": "a"}})
		if _, err := ingest.ParseEvent(raw, ingest.Defaults{ReceivedAt: time.Now(), NewID: ingest.NewID}); err != nil {
			t.Errorf("the page names %s a built-in, but the collector refuses it: %v", name, err)
		}
	}
	if hasTestID(p.body, "new-event-type") {
		t.Error("a viewer is offered to register event types")
	}
	if p := viewer.get("/event-types/new"); p.status != http.StatusForbidden {
		t.Errorf("viewer on the new event type form: %d", p.status)
	}

	ed := h.signedIn("ed@example.com", auth.Editor)
	if p := ed.get("/event-types"); !hasTestID(p.body, "new-event-type") {
		t.Error("no New event type button for an editor")
	}
	if p := ed.get("/event-types/new?name=signup"); !strings.Contains(p.body, `id="name" name="name" value="signup"`) {
		t.Errorf("the form is not prefilled with the name asked for")
	}
	for _, tc := range []struct{ name, schema, want string }{
		{"Sign Up", `{"type":"object"}`, "Name"},
		{"page_view", `{"type":"object"}`, "is a built-in event type"},
		{"signup", `{type`, "is not valid JSON"},
	} {
		if p := ed.post("/event-types", url.Values{"name": {tc.name}, "schema": {tc.schema}}); p.status != http.StatusUnprocessableEntity || !strings.Contains(html.UnescapeString(p.body), tc.want) {
			t.Errorf("%s %s: %d, want 422 saying %q", tc.name, tc.schema, p.status, tc.want)
		}
	}
	p = ed.post("/event-types", url.Values{"name": {"signup"}, "schema": {`{"type":"object","properties":{"plan":{"type":"string"}}}`}})
	if p.location != "/event-types/signup" {
		t.Fatalf("register: %d %s", p.status, p.location)
	}
	if got := text(ed.follow(p).body, "flash"); !strings.Contains(got, "signup registered") {
		t.Errorf("flash %q", got)
	}
	if vs, err := ingestpg.New(h.pool).TypeVersions(t.Context(), "signup"); err != nil || len(vs) != 1 || vs[0].CreatedBy != "user:ed@example.com" {
		t.Errorf("stored %+v %v", vs, err)
	}
	if p := ed.post("/event-types", url.Values{"name": {"signup"}, "schema": {`{"type":"object"}`}}); p.status != 422 || !strings.Contains(p.body, "is taken") {
		t.Errorf("registering signup twice: %d", p.status)
	}
}

// TestGoalEventWarning: a goal no event type has is saved with a warning that says
// why it will never convert and offers to register it; the experiment page and the
// list keep saying so until it is registered.
func TestGoalEventWarning(t *testing.T) {
	t.Parallel()
	h := typesHarness(t)
	b := h.signedIn("ed@example.com", auth.Editor)
	if p := b.get("/experiments/new"); !strings.Contains(p.body, `<datalist id="event-types">`) || !strings.Contains(p.body, `<option value="purchase">`) {
		t.Error("the goal field offers no event types")
	}
	form := url.Values{
		"key": {"onboarding"}, "name": {"Onboarding"}, "coverage": {"100"},
		"variant_key": {"control", "short"}, "variant_name": {"", "Short form"}, "variant_weight": {"50", "50"}, "variant_value": {"", ""},
		"target_mode": {"builder"}, "rule_attr": {""}, "rule_op": {"$eq"}, "rule_value": {""},
		"goal_event": {"signup"}, "goal_kind": {"conversion"}, "op": {"save"},
	}
	p := b.follow(b.post("/experiments", form))
	if f := text(p.body, "flash"); !strings.Contains(f, "no event type signup exists") || !strings.Contains(p.body, `href="/event-types/new?name=signup"`) {
		t.Errorf("flash %q, want a warning about signup with a link to register it", f)
	}
	if p := b.get("/experiments/onboarding"); !hasTestID(p.body, "unknown-event") || hasTestID(p.body, "flash") {
		t.Error("the experiment page does not keep warning about signup (or repeats the flash)")
	}
	if p := b.get("/experiments"); !hasTestID(p.body, "goal-missing-onboarding") {
		t.Error("the list does not flag the unregistered goal")
	}
	b.get("/event-types/new")
	b.post("/event-types", url.Values{"name": {"signup"}, "schema": {`{"type":"object"}`}})
	if p := b.get("/experiments/onboarding"); hasTestID(p.body, "unknown-event") {
		t.Error("still warning after signup was registered")
	}
	if p := b.get("/experiments"); hasTestID(p.body, "goal-missing-onboarding") {
		t.Error("the list still flags the goal after signup was registered")
	}
	b.get("/experiments/onboarding/edit")
	if p := b.follow(b.post("/experiments/onboarding", form)); text(p.body, "flash") != "Experiment saved." {
		t.Errorf("flash %q after saving with a known goal", text(p.body, "flash"))
	}
}

// TestVariantNamesShown: names given in the form appear wherever the experiment's
// variants are listed outside the results (the page's variants card, the winner form).
func TestVariantNamesShown(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	// A bandit has no control unless bandit.control names one (issue 19).
	h.create(experiments.KindExperiment, `{"key":"reco","name":"Recommendations","type":"bandit","status":"running",
		"variants":[{"key":"a","name":"Trending now"},{"key":"b","name":"Because you viewed"},{"key":"c"}],"goal":{"event":"click","kind":"conversion"}}`)
	b := h.signedIn("ed@example.com", auth.Editor)
	p := b.get("/experiments/reco")
	for id, want := range map[string]string{"variant-a": "Trending now a", "variant-b": "Because you viewed b", "variant-c": "c"} {
		if got := text(p.body, id); got != want {
			t.Errorf("variants card %s: %q, want %q", id, got, want)
		}
	}
	if p := b.get("/experiments/reco/winner"); !strings.Contains(p.body, "Trending now") || !strings.Contains(p.body, "Because you viewed") {
		t.Error("the winner form shows keys only")
	}
}

// TestFormErrorsReadable: problems are named as the form labels the field, each once
// in the summary and once at its field, and a JSON hint quotes what was typed.
func TestFormErrorsReadable(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	b := h.signedIn("ed@example.com", auth.Editor)
	b.get("/experiments/new")
	p := b.post("/experiments", url.Values{
		"key": {"color"}, "name": {"Color"}, "coverage": {"100"},
		"variant_key": {"control", "green"}, "variant_name": {"", ""}, "variant_weight": {"50", "50"}, "variant_value": {`"c"`, `green`},
		"target_mode": {"builder"}, "rule_attr": {""}, "rule_op": {"$eq"}, "rule_value": {""},
		"goal_event": {"purchase"}, "goal_kind": {"conversion"}, "op": {"save"},
	})
	body := html.UnescapeString(p.body)
	const hint = `is not valid JSON: text needs double quotes, as in "green"`
	switch {
	case p.status != 422:
		t.Fatalf("status %d", p.status)
	case !strings.Contains(text(p.body, "form-errors"), "Variant 2 value "+hint):
		t.Errorf("summary %q, want it to name Variant 2 value and quote green", text(p.body, "form-errors"))
	case strings.Count(body, hint) != 2:
		t.Errorf("the hint appears %d times, want twice (summary and field)", strings.Count(body, hint))
	case strings.Contains(body, "variants[1]") || strings.Contains(body, `"blue"`):
		t.Error("the page speaks of variants[1] or of blue")
	}
}

// TestFlagEditor: flag rules take conditions through the experiment targeting's
// builder, the list shows rollouts as such, saving says so, and the area is called
// Feature flags everywhere.
func TestFlagEditor(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	seed(h)
	b := h.signedIn("ed@example.com", auth.Editor)
	p := b.get("/flags/free-shipping")
	if got := text(p.body, "rule-summary-0"); got != "Serves true to a 20% rollout of users in us-mobile." {
		t.Errorf("rule summary %q", got)
	}
	if !hasTestID(p.body, "cond-builder-rows-0") || strings.Contains(p.body, `placeholder="rule-0"`) {
		t.Error("the rule's condition is not in the builder, or rule-0 is offered as its name")
	}
	form := url.Values{"key": {"promo"}, "name": {"Promo banner"}, "type": {"boolean"}, "default": {"false"}, "enabled": {"on"},
		"rule_kind": {"value"}, "rule_0_mode": {"builder"}, "rule_0_attr": {"country", "plan"}, "rule_0_op": {"$in", "$eq"}, "rule_0_value": {"US, CA", "pro"},
		"rule_condition": {""}, "rule_segment": {""}, "rule_rollout": {"20"}, "rule_value": {"true"}, "rule_variant": {""}, "rule_experiment": {""}}
	b.get("/flags/new")
	form.Set("op", "cond-add-0")
	if p := b.post("/flags", form); p.status != 200 || strings.Count(p.body, `name="rule_0_attr"`) != 3 {
		t.Errorf("add condition: %d, %d attribute fields", p.status, strings.Count(p.body, `name="rule_0_attr"`))
	}
	form.Set("op", "cond-json-0")
	if p := b.post("/flags", form); p.status != 200 || !strings.Contains(html.UnescapeString(p.body), `"$in": [`) || !hasTestID(p.body, "cond-builder-0") {
		t.Errorf("edit as JSON: %d", p.status)
	}
	form.Set("op", "save")
	p = b.post("/flags", form)
	if p.location != "/flags" {
		t.Fatalf("save: %d\n%.3000s", p.status, p.body)
	}
	doc, _ := h.svc.Get(t.Context(), experiments.KindFlag, "promo")
	var fl experiments.Flag
	_ = json.Unmarshal(doc, &fl)
	if len(fl.Rules) != 1 || !sameJSON(fl.Rules[0].Condition, `{"country":{"$in":["US","CA"]},"plan":{"$eq":"pro"}}`) || fl.Rules[0].Rollout == nil || *fl.Rules[0].Rollout != 0.2 {
		t.Errorf("stored %s", doc)
	}
	p = b.follow(p)
	if f := text(p.body, "flash"); !strings.Contains(f, "Promo banner") || !strings.Contains(f, "saved") {
		t.Errorf("no confirmation after saving: flash %q", f)
	}
	if !strings.Contains(p.body, "<h1>Feature flags</h1>") || !strings.Contains(p.body, "<title>Feature flags · lift</title>") {
		t.Error("the flags page is not called Feature flags")
	}
	if got := text(p.body, "rollout-promo"); got != "rollout 20%" {
		t.Errorf("rollout column %q, want rollout 20%%", got)
	}
	if got := text(p.body, "rollout-free-shipping"); got != "rollout 20%" {
		t.Errorf("rollout column %q, want rollout 20%%", got)
	}

	// A condition the builder cannot show stays JSON; problems are named as the form
	// names them.
	h.create(experiments.KindFlag, `{"key":"beta","type":"json","default":{},"rules":[{"condition":{"$or":[{"a":1},{"b":2}]},"value":{"on":true}}]}`)
	p = b.get("/flags/beta")
	if !strings.Contains(p.body, `id="rule_condition_0"`) || !hasTestID(p.body, "cond-builder-0") {
		t.Error("an $or condition is not shown as JSON")
	}
	p = b.post("/flags/beta", url.Values{"name": {"Beta"}, "type": {"json"}, "default": {"{}"}, "enabled": {"on"},
		"rule_kind": {"value"}, "rule_0_mode": {"json"}, "rule_condition": {`{"$or":[{"a":1},{"b":2}]}`}, "rule_segment": {""},
		"rule_rollout": {"150"}, "rule_value": {"blue"}, "rule_variant": {""}, "rule_experiment": {""}, "op": {"save"}})
	summary := text(p.body, "form-errors")
	if p.status != 422 || !strings.Contains(summary, "Rule 1 rollout must be a percentage") || !strings.Contains(summary, `Rule 1 value is not valid JSON: text needs double quotes, as in "blue"`) || strings.Contains(p.body, "rules[0]") {
		t.Errorf("errors: %d %q", p.status, summary)
	}
	if n := strings.Count(p.body, "must be a percentage between 0 and 100"); n != 2 {
		t.Errorf("the rollout problem is said %d times, want twice (summary and field)", n)
	}
}
