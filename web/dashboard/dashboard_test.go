package dashboard_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/liftlab/lift/experiments"
	"github.com/liftlab/lift/web/auth"
)

const (
	heroBanner = `{"key":"hero-banner","name":"Hero banner","variants":[{"key":"control","weight":0.5,"value":{"img":"a.png"}},{"key":"bold","weight":0.5}],
		"targeting":{"country":{"$in":["US","CA"]}},"segments":["us-mobile"],"goal":{"event":"purchase","kind":"conversion"}}`
	usMobile     = `{"key":"us-mobile","kind":"attribute","condition":{"country":"US","device":"mobile"}}`
	freeShipping = `{"key":"free-shipping","type":"boolean","default":false,"rules":[{"segment":"us-mobile","rollout":0.2,"value":true}]}`
)

func seed(h *harness) {
	h.create(experiments.KindSegment, usMobile)
	h.create(experiments.KindExperiment, heroBanner)
	h.create(experiments.KindFlag, freeShipping)
}

func TestPagesNeedLogin(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	b := h.browser()
	for _, path := range []string{"/experiments", "/experiments/new", "/flags", "/segments", "/saved-groups", "/events", "/event-types", "/keys", "/users", "/audit", "/experiments/x"} {
		p := b.get(path)
		if p.status != http.StatusSeeOther || p.location != "/login?next="+url.QueryEscape(path) {
			t.Errorf("GET %s logged out: %d Location %q", path, p.status, p.location)
		}
	}
	if p := b.get("/login"); p.status != 200 || !hasTestID(p.body, "login-form") || !strings.Contains(p.body, `name="email"`) || !strings.Contains(p.body, `name="password"`) {
		t.Errorf("GET /login: %d", p.status)
	}
}

func TestLogin(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.user("ann@example.com", auth.Admin)
	b := h.browser()
	b.get("/login")
	if p := b.post("/login", url.Values{"email": {"ann@example.com"}, "password": {"wrong password"}}); p.status != 401 || !hasTestID(p.body, "login-error") {
		t.Fatalf("wrong password: %d", p.status)
	}
	p := b.post("/login", url.Values{"email": {"ANN@example.com"}, "password": {password}, "next": {"/flags"}})
	if p.status != http.StatusSeeOther || p.location != "/flags" {
		t.Fatalf("login: %d %q", p.status, p.location)
	}
	cookie := strings.Join(p.header.Values("Set-Cookie"), "\n")
	for _, want := range []string{"lift_session=", "HttpOnly", "SameSite=Lax"} {
		if !strings.Contains(cookie, want) {
			t.Errorf("session cookie lacks %s: %s", want, cookie)
		}
	}
	if p := b.get("/flags"); p.status != 200 || !strings.Contains(p.body, "ann@example.com") {
		t.Fatalf("after login: %d", p.status)
	}
	// An open redirect through next is refused, at sign-in and when already signed in
	// (TestSafeNext has the full table of forms).
	for _, next := range []string{"//evil.example", "/\t/evil.example/x", "/\\evil.example"} {
		b2 := h.browser()
		b2.get("/login")
		if p := b2.post("/login", url.Values{"email": {"ann@example.com"}, "password": {password}, "next": {next}}); p.location != "/experiments" {
			t.Errorf("next=%q redirected to %q", next, p.location)
		}
		if p := b2.get("/login?next=" + url.QueryEscape(next)); p.location != "/experiments" {
			t.Errorf("signed in, GET /login?next=%q redirected to %q", next, p.location)
		}
	}
	if p := b.post("/logout", url.Values{}); p.status != http.StatusSeeOther {
		t.Fatalf("logout: %d", p.status)
	}
	if p := b.get("/flags"); p.status != http.StatusSeeOther {
		t.Errorf("after logout: %d", p.status)
	}
}

func TestLoginThrottled(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	b := h.browser()
	b.get("/login")
	var last page
	for range 12 {
		last = b.post("/login", url.Values{"email": {"nobody@example.com"}, "password": {"guess guess"}})
	}
	if last.status != http.StatusTooManyRequests || last.header.Get("Retry-After") == "" {
		t.Errorf("12th attempt: %d, want 429 with Retry-After", last.status)
	}
}

func TestEveryPage(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	seed(h)
	b := h.signedIn("admin@example.com", auth.Admin)
	for _, tc := range []struct{ path, testid, text string }{
		{"/experiments", "experiment-hero-banner", "Hero banner"},
		{"/experiments?status=draft", "experiments-table", "hero-banner"},
		{"/experiments/new", "experiment-form", "Add variant"},
		{"/experiments/hero-banner", "results-placeholder", "Results appear once events are collected"},
		{"/experiments/hero-banner/edit", "experiment-form", `value="bold"`},
		{"/experiments/hero-banner/start", "confirm", "Start experiment"},
		{"/flags", "flag-free-shipping", "free-shipping"},
		{"/flags/new", "flag-form", "Add rule"},
		{"/flags/free-shipping", "rule-0", "us-mobile"},
		{"/flags/free-shipping/toggle", "confirm", "Turn off"},
		{"/flags/free-shipping/delete", "confirm", "Delete flag"},
		{"/segments", "segment-us-mobile", "us-mobile"},
		{"/segments/new", "segment-form", "Test a user"},
		{"/segments/us-mobile", "segment-form", "device"},
		{"/segments/new?kind=behavioral", "rule-builder", "Stay a member for"},
		{"/saved-groups", "empty", "New saved group"},
		{"/saved-groups/new", "group-form", "Values are"},
		{"/events", "live-feed", "Live events"},
		{"/events?tab=dead", "live-feed", "Dead letters"},
		{"/keys", "keys-table", "Create key"},
		{"/users", "users-table", "admin@example.com"},
		{"/audit", "audit-log", "hero-banner"},
		{"/audit?entity=flag&key=free-shipping", "audit-log", "free-shipping"},
	} {
		p := b.get(tc.path)
		if p.status != 200 || !hasTestID(p.body, tc.testid) || !strings.Contains(p.body, tc.text) {
			t.Errorf("GET %s: status %d, testid %s %v, text %q %v", tc.path, p.status, tc.testid, hasTestID(p.body, tc.testid), tc.text, strings.Contains(p.body, tc.text))
		}
	}
	if p := b.get("/experiments/nope"); p.status != 404 || !hasTestID(p.body, "error-page") {
		t.Errorf("missing experiment: %d", p.status)
	}
	if p := b.get("/static/htmx.min.js"); p.status != 200 {
		t.Errorf("htmx: %d", p.status)
	}
}

func TestExperimentForm(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.create(experiments.KindSegment, usMobile)
	b := h.signedIn("ed@example.com", auth.Editor)
	b.get("/experiments/new")

	form := url.Values{
		"key": {"Bad Key"}, "name": {"Checkout"}, "coverage": {"100"},
		"variant_key": {"control", "green"}, "variant_name": {"", ""}, "variant_weight": {"60", "60"}, "variant_value": {`{"c":1}`, `{bad`},
		"target_mode": {"builder"}, "rule_attr": {"country"}, "rule_op": {"$in"}, "rule_value": {"US, CA"},
		"goal_event": {"purchase"}, "goal_kind": {"conversion"}, "op": {"save"},
	}
	p := b.post("/experiments", form)
	if p.status != http.StatusUnprocessableEntity || !hasTestID(p.body, "form-errors") {
		t.Fatalf("invalid form: %d", p.status)
	}
	for _, want := range []string{"must add up to 100%", "Variant 2 value", "is not valid JSON"} {
		if !strings.Contains(p.body, want) {
			t.Errorf("invalid form does not say %q", want)
		}
	}
	// Fix the form-level problems: now the service names the key.
	form.Set("variant_weight", "50")
	form["variant_weight"] = []string{"50", "50"}
	form["variant_value"] = []string{`{"c":1}`, `{"c":2}`}
	if p = b.post("/experiments", form); p.status != 422 || !strings.Contains(p.body, "must match") {
		t.Fatalf("bad key: %d", p.status)
	}
	// Editing operations re-render without saving.
	form.Set("op", "add-variant")
	if p = b.post("/experiments", form); p.status != 200 || !hasTestID(p.body, "variant-2") {
		t.Fatalf("add variant: %d", p.status)
	}
	form.Set("op", "to-json")
	if p = b.post("/experiments", form); p.status != 200 || !strings.Contains(p.body, `id="target_json"`) || !strings.Contains(p.body, "$in") {
		t.Fatalf("to json: %d", p.status)
	}
	form.Set("key", "checkout")
	form["segments"] = []string{"us-mobile"}
	form.Set("op", "save")
	if p = b.post("/experiments", form); p.status != http.StatusSeeOther || p.location != "/experiments/checkout" {
		t.Fatalf("save: %d %s", p.status, p.body)
	}
	doc, err := h.svc.Get(t.Context(), experiments.KindExperiment, "checkout")
	if err != nil {
		t.Fatal(err)
	}
	var e experiments.Experiment
	_ = json.Unmarshal(doc, &e)
	if len(e.Variants) != 2 || e.Variants[1].Weight != 0.5 || !sameJSON(e.Targeting, `{"country":{"$in":["US","CA"]}}`) || len(e.Segments) != 1 || e.Goal.Event != "purchase" {
		t.Errorf("stored %s", doc)
	}

	// Edit keeps the key and the status; start goes through the confirmation form.
	b.get("/experiments/checkout/start")
	if p = b.post("/experiments/checkout/start", url.Values{}); p.status != http.StatusSeeOther {
		t.Fatalf("start: %d", p.status)
	}
	if p = b.get("/experiments/checkout"); !strings.Contains(p.body, "badge-running") {
		t.Errorf("not running after start")
	}
	b.get("/experiments/checkout/edit")
	form.Set("name", "Checkout v2")
	if p = b.post("/experiments/checkout", form); p.status != http.StatusSeeOther {
		t.Fatalf("edit: %d", p.status)
	}
	entries, _ := h.svc.Audit(t.Context(), experiments.AuditQuery{Entity: experiments.KindExperiment, Key: "checkout"})
	if len(entries) != 3 || entries[0].Actor != "user:ed@example.com" || entries[1].Action != "start" {
		t.Errorf("audit: %+v", entries)
	}
	if p = b.get("/audit?entity=experiment&key=checkout"); !strings.Contains(p.body, "Checkout v2") || !strings.Contains(p.body, "name") {
		t.Errorf("audit page lacks the diff")
	}
}

func TestFlagAndSegmentForms(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	seed(h)
	b := h.signedIn("ed@example.com", auth.Editor)
	b.get("/flags/new")
	form := url.Values{"key": {"banner-text"}, "type": {"string"}, "default": {"Welcome"}, "enabled": {"on"},
		"rule_kind": {"value"}, "rule_condition": {`{"country":"FR"}`}, "rule_segment": {""}, "rule_rollout": {"150"},
		"rule_value": {"Bienvenue"}, "rule_variant": {""}, "rule_experiment": {""}, "op": {"save"}}
	if p := b.post("/flags", form); p.status != 422 || !strings.Contains(p.body, "between 0 and 100") {
		t.Fatalf("bad rollout: %d", p.status)
	}
	form.Set("rule_rollout", "30")
	if p := b.post("/flags", form); p.status != http.StatusSeeOther {
		t.Fatalf("create flag: %d", p.status)
	}
	doc, _ := h.svc.Get(t.Context(), experiments.KindFlag, "banner-text")
	if !strings.Contains(string(doc), `"Bienvenue"`) || !strings.Contains(string(doc), `0.3`) {
		t.Errorf("stored flag %s", doc)
	}
	b.get("/flags/free-shipping/toggle")
	if p := b.post("/flags/free-shipping/toggle", url.Values{}); p.status != http.StatusSeeOther {
		t.Fatalf("kill switch: %d", p.status)
	}
	doc, _ = h.svc.Get(t.Context(), experiments.KindFlag, "free-shipping")
	if !strings.Contains(string(doc), `"enabled":false`) && !strings.Contains(string(doc), `"enabled": false`) {
		t.Errorf("kill switch did not turn the flag off: %s", doc)
	}

	b.get("/segments/new")
	if p := b.post("/segments", url.Values{"key": {"eu"}, "condition": {`{"country":{"$bogus":1}}`}}); p.status != 422 || !strings.Contains(p.body, "Condition (country.$bogus)") {
		t.Errorf("bad condition: %d", p.status)
	}
	for _, tc := range []struct{ attrs, want string }{
		{`{"country":"US","device":"mobile"}`, "Match."},
		{`{"country":"FR"}`, "No match."},
		{`[1]`, "must be a JSON object"},
	} {
		p := b.post("/segments/test", url.Values{"condition": {usMobileCondition}, "attributes": {tc.attrs}}, "HX-Request", "true")
		if p.status != 200 || !strings.Contains(p.body, tc.want) || strings.Contains(p.body, "<html") {
			t.Errorf("test %s: %d %q", tc.attrs, p.status, p.body)
		}
	}
}

func sameJSON(got json.RawMessage, want string) bool {
	var a, b any
	return json.Unmarshal(got, &a) == nil && json.Unmarshal([]byte(want), &b) == nil && reflect.DeepEqual(a, b)
}

func TestDelete(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	seed(h)
	b := h.signedIn("ed@example.com", auth.Editor)
	if p := b.get("/segments/us-mobile/delete"); p.status != 200 || !hasTestID(p.body, "confirm") {
		t.Fatalf("delete confirm: %d", p.status)
	}
	if p := b.post("/segments/us-mobile/delete", url.Values{}); p.status != http.StatusConflict || !strings.Contains(p.body, "is used by") {
		t.Errorf("delete a segment in use: %d", p.status)
	}
	for _, path := range []string{"/flags/free-shipping", "/experiments/hero-banner", "/segments/us-mobile"} {
		b.get(path + "/delete")
		if p := b.post(path+"/delete", url.Values{}); p.status != http.StatusSeeOther {
			t.Fatalf("delete %s: %d %s", path, p.status, p.body)
		}
		if p := b.get(path); p.status != http.StatusNotFound {
			t.Errorf("%s after delete: %d", path, p.status)
		}
	}
}

const usMobileCondition = `{"country":"US","device":"mobile"}`

func TestKeysAndUsers(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	b := h.signedIn("admin@example.com", auth.Admin)
	b.get("/keys")
	p := b.post("/keys", url.Values{"name": {"web"}, "kind": {"client"}})
	if p.status != 201 || !hasTestID(p.body, "new-key-secret") || !strings.Contains(p.body, "lift_ck_") {
		t.Fatalf("create key: %d", p.status)
	}
	if p = b.get("/keys"); strings.Contains(p.body, "new-key-secret") {
		t.Error("the secret is shown again")
	}
	if p = b.get("/keys/1/revoke"); p.status != 200 {
		t.Fatalf("revoke confirm: %d", p.status)
	}
	if p = b.post("/keys/1/revoke", url.Values{}); p.status != http.StatusSeeOther {
		t.Fatalf("revoke: %d", p.status)
	}
	b.get("/users")
	if p = b.post("/users", url.Values{"email": {"not-an-email"}, "role": {"viewer"}, "password": {"short"}}); p.status != 422 || !strings.Contains(p.body, "is not an e-mail address") {
		t.Errorf("bad user: %d", p.status)
	}
	if p = b.post("/users", url.Values{"email": {"vic@example.com"}, "role": {"viewer"}, "password": {password}}); p.status != 201 || !hasTestID(p.body, "user-created") {
		t.Errorf("create user: %d", p.status)
	}
	if p = b.post("/users", url.Values{"email": {"vic@example.com"}, "role": {"viewer"}, "password": {password}}); p.status != 422 || !strings.Contains(p.body, "exists") {
		t.Errorf("duplicate user: %d", p.status)
	}
}

func TestCSRF(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	b := h.signedIn("ed@example.com", auth.Editor)
	if p := b.post("/experiments", url.Values{"csrf": {""}, "key": {"x"}}); p.status != http.StatusForbidden || !strings.Contains(p.body, "CSRF") {
		t.Errorf("form without token: %d", p.status)
	}
	if p := b.post("/experiments", url.Values{"csrf": {"forged"}, "key": {"x"}}); p.status != http.StatusForbidden {
		t.Errorf("form with a wrong token: %d", p.status)
	}
	// The management API with the session cookie: reads are fine, writes need the token.
	api := func(method, body, token string) int {
		req, _ := http.NewRequest(method, h.url+"/api/v1/segments", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("X-CSRF-Token", token)
		}
		return b.do(req).status
	}
	if s := api("GET", "", ""); s != 200 {
		t.Errorf("GET /api/v1/segments with session: %d", s)
	}
	if s := api("POST", usMobile, ""); s != 400 && s != 403 {
		t.Errorf("POST /api/v1/segments without token: %d", s)
	}
	if s := api("POST", usMobile, b.csrf); s != 201 {
		t.Errorf("POST /api/v1/segments with token: %d", s)
	}
	entries, _ := h.svc.Audit(t.Context(), experiments.AuditQuery{Key: "us-mobile"})
	if len(entries) != 1 || entries[0].Actor != "user:ed@example.com" {
		t.Errorf("API change by session audited as %+v", entries)
	}
}

func TestViewerCannotEdit(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	seed(h)
	b := h.signedIn("vic@example.com", auth.Viewer)
	p := b.get("/experiments")
	if p.status != 200 || hasTestID(p.body, "new-experiment") {
		t.Errorf("viewer list: %d, new button shown %v", p.status, hasTestID(p.body, "new-experiment"))
	}
	if p = b.get("/experiments/hero-banner"); hasTestID(p.body, "experiment-actions") {
		t.Error("viewer sees experiment actions")
	}
	for _, path := range []string{"/experiments/new", "/experiments/hero-banner/edit", "/experiments/hero-banner/start", "/users",
		"/segments/new", "/saved-groups/new", "/experiments/hero-banner/winner"} {
		if p := b.get(path); p.status != http.StatusForbidden {
			t.Errorf("viewer GET %s: %d", path, p.status)
		}
	}
	for _, path := range []string{"/experiments/hero-banner/start", "/flags/free-shipping/toggle", "/keys", "/saved-groups", "/segments/us-mobile", "/experiments/hero-banner/winner"} {
		if p := b.post(path, url.Values{"name": {"x"}, "kind": {"client"}}); p.status != http.StatusForbidden {
			t.Errorf("viewer POST %s: %d", path, p.status)
		}
	}
	req, _ := http.NewRequest("POST", h.url+"/api/v1/experiments/hero-banner/start", nil)
	req.Header.Set("X-CSRF-Token", b.csrf)
	if s := b.do(req).status; s != http.StatusForbidden {
		t.Errorf("viewer API start: %d", s)
	}
	// Viewers may still test a user against a segment: it changes nothing.
	if p := b.post("/segments/test", url.Values{"condition": {usMobileCondition}, "attributes": {`{"country":"US","device":"mobile"}`}}); p.status != 200 || !strings.Contains(p.body, "Match.") {
		t.Errorf("viewer segment test: %d", p.status)
	}
	doc, _ := h.svc.Get(t.Context(), experiments.KindExperiment, "hero-banner")
	if !strings.Contains(string(doc), `"draft"`) {
		t.Errorf("viewer changed the experiment: %s", doc)
	}
}
