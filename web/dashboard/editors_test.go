package dashboard_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/liftlab/lift/experiments"
	"github.com/liftlab/lift/experiments/pgstore"
	"github.com/liftlab/lift/segments"
	segstore "github.com/liftlab/lift/segments/pgstore"
	"github.com/liftlab/lift/web/auth"
	"github.com/liftlab/lift/web/dashboard"
)

func storedExperiment(t *testing.T, h *harness, key string) experiments.Experiment {
	t.Helper()
	doc, err := h.svc.Get(t.Context(), experiments.KindExperiment, key)
	if err != nil {
		t.Fatal(err)
	}
	var e experiments.Experiment
	if err := json.Unmarshal(doc, &e); err != nil {
		t.Fatal(err)
	}
	return e
}

// The form sets the type, secondary and guardrail metrics, the analysis and the
// bandit options, and shows them again when editing.
func TestExperimentFormMetricsAndBandit(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.create(experiments.KindSegment, usMobile)
	b := h.signedIn("ed@example.com", auth.Editor)
	if p := b.get("/experiments/new"); !hasTestID(p.body, "bandit-options") || !hasTestID(p.body, "add-metric") || !strings.Contains(p.body, `name="type"`) {
		t.Fatalf("new form lacks type, metrics or bandit options")
	}
	form := url.Values{
		"key": {"reco"}, "name": {"Recommendations"}, "type": {"bandit"}, "coverage": {"100"},
		"variant_key": {"a", "b"}, "variant_name": {"", ""}, "variant_weight": {"", ""}, "variant_value": {"", ""},
		"target_mode": {"builder"}, "rule_attr": {""}, "rule_op": {"$eq"}, "rule_value": {""},
		"goal_event": {"purchase"}, "goal_kind": {"conversion"}, "goal_window": {"3d"},
		"metric_key": {"revenue", "errors"}, "metric_event": {"purchase", "page_error"}, "metric_kind": {"value", "conversion"},
		"metric_role": {"secondary", "guardrail"}, "metric_window": {"", "soon"},
		"correction": {"holm"}, "sequential": {"on"}, "cuped": {"on"},
		"bandit_min_weight": {"5"}, "bandit_update_every": {"30s"}, "bandit_threshold": {"97"},
		"bandit_auto_stop": {"on"}, "bandit_per_segment": {"us-mobile"}, "op": {"save"},
	}
	p := b.post("/experiments", form)
	if p.status != http.StatusUnprocessableEntity || !strings.Contains(p.body, "Metric 2 window") {
		t.Fatalf("bad metric window: %d", p.status)
	}
	form["metric_window"] = []string{"", "36h"}
	form.Set("op", "add-metric")
	if p = b.post("/experiments", form); p.status != 200 || !hasTestID(p.body, "metric-2") {
		t.Fatalf("add metric: %d", p.status)
	}
	form.Set("op", "save") // the blank third row is not posted: a browser would post it empty
	if p = b.post("/experiments", form); p.status != http.StatusSeeOther {
		t.Fatalf("save: %d\n%s", p.status, p.body)
	}
	e := storedExperiment(t, h, "reco")
	if e.Type != "bandit" || e.Goal.Window != "72h" || len(e.Metrics) != 2 || e.Metrics[1].Role != "guardrail" || e.Metrics[1].Window != "36h" ||
		e.Analysis == nil || e.Analysis.Correction != "holm" || !e.SequentialTesting() || e.Analysis.CUPED != nil {
		t.Errorf("stored %+v (analysis %+v)", e, e.Analysis)
	}
	if bc := e.Bandit; bc == nil || bc.MinWeight != 0.05 || bc.UpdateEvery != "30s" || bc.WinnerThreshold != 0.97 || !bc.AutoStop || len(bc.PerSegment) != 1 {
		t.Errorf("bandit options %+v", e.Bandit)
	}
	p = b.get("/experiments/reco/edit")
	for _, want := range []string{`value="3d"`, `value="36h"`, `value="errors"`, `value="5"`, `value="97"`, `value="holm" selected`} {
		if !strings.Contains(p.body, want) {
			t.Errorf("edit form lacks %s", want)
		}
	}
	if p = b.get("/experiments/reco"); !hasTestID(p.body, "bandit-config") || !hasTestID(p.body, "metrics") || !strings.Contains(p.body, "within 3 days") {
		t.Errorf("detail page lacks the setup")
	}
	// Back to an A/B test: the bandit options go, and CUPED off is recorded.
	form.Set("type", "ab")
	form.Del("cuped")
	if p = b.post("/experiments/reco", form); p.status != http.StatusSeeOther {
		t.Fatalf("to A/B: %d\n%s", p.status, p.body)
	}
	if e = storedExperiment(t, h, "reco"); e.Type != "ab" || e.Bandit != nil || e.Analysis.CUPED == nil || *e.Analysis.CUPED {
		t.Errorf("after switching to A/B: %+v", e)
	}
}

// A bandit's winner is declared from the page (the candidate its results recommend
// preselected), served to everyone from the snapshot, and can be taken back.
func TestDeclareWinner(t *testing.T) {
	t.Parallel()
	h := newHarnessDeps(t, func(_ experiments.Store, _ *pgxpool.Pool, d *dashboard.Deps) {
		d.Bandits = fakeBandits{rep: recoReport("")}
		d.Results = fakeResults{recoResults("ship")}
	})
	h.create(experiments.KindExperiment, recoBandit)
	h.create(experiments.KindExperiment, checkout)
	b := h.signedIn("ed@example.com", auth.Editor)
	p := b.get("/experiments/reco")
	if !hasTestID(p.body, "declare-winner") || !hasTestID(p.body, "declare-candidate") {
		t.Fatalf("no declare buttons on a running bandit")
	}
	p = b.get("/experiments/reco/winner")
	if p.status != 200 || !hasTestID(p.body, "winner-form") || !strings.Contains(p.body, `value="b" checked`) || !strings.Contains(p.body, "P(best) 97%") {
		t.Fatalf("winner page: %d", p.status)
	}
	if p = b.post("/experiments/reco/winner", url.Values{}); p.status != http.StatusUnprocessableEntity || !hasTestID(p.body, "form-errors") {
		t.Errorf("no variant: %d", p.status)
	}
	if p = b.post("/experiments/reco/winner", url.Values{"variant": {"zzz"}}); p.status != http.StatusUnprocessableEntity {
		t.Errorf("unknown variant: %d", p.status)
	}
	if p = b.post("/experiments/reco/winner", url.Values{"variant": {"b"}}); p.status != http.StatusSeeOther {
		t.Fatalf("declare: %d", p.status)
	}
	if e := storedExperiment(t, h, "reco"); e.Bandit == nil || e.Bandit.Winner != "b" || e.Status != "running" {
		t.Errorf("after declaring: %+v", e)
	}
	snap := experiments.NewLive(pgstore.New(h.pool))
	if err := snap.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, user := range []string{"u1", "u2", "u3", "u4"} {
		if got, _ := snap.Snapshot().Evaluate("reco", user, nil); got.Variant != "b" {
			t.Errorf("%s gets %+v, want the winner b", user, got)
		}
	}
	if p = b.get("/experiments/reco"); !hasTestID(p.body, "resume-learning") {
		t.Errorf("no resume button after declaring")
	}
	b.get("/experiments/reco/winner")
	if p = b.post("/experiments/reco/winner", url.Values{"op": {"resume"}}); p.status != http.StatusSeeOther {
		t.Fatalf("resume: %d", p.status)
	}
	if e := storedExperiment(t, h, "reco"); e.Bandit != nil && e.Bandit.Winner != "" {
		t.Errorf("winner still set after resuming: %+v", e.Bandit)
	}
	if p = b.get("/experiments/checkout/winner"); p.status != http.StatusConflict {
		t.Errorf("winner of an A/B test: %d", p.status)
	}
	entries, _ := h.svc.Audit(t.Context(), experiments.AuditQuery{Entity: experiments.KindExperiment, Key: "reco"})
	if len(entries) != 3 || entries[1].Actor != "user:ed@example.com" {
		t.Errorf("audit %+v", entries)
	}
	v := h.signedIn("viewer@example.com", auth.Viewer)
	if p = v.get("/experiments/reco/winner"); p.status != http.StatusForbidden {
		t.Errorf("viewer declaring: %d", p.status)
	}
}

func TestSavedGroups(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	b := h.signedIn("ed@example.com", auth.Editor)
	if p := b.get("/saved-groups"); p.status != 200 || !hasTestID(p.body, "empty") {
		t.Fatalf("empty list: %d", p.status)
	}
	b.get("/saved-groups/new")
	form := url.Values{"key": {"vip-accounts"}, "name": {"VIP accounts"}, "type": {"numbers"}, "values": {"17\nseventeen\n\n42"}}
	if p := b.post("/saved-groups", form); p.status != http.StatusUnprocessableEntity || !strings.Contains(p.body, "line 2") {
		t.Fatalf("bad number: %d", p.status)
	}
	form.Set("values", "17\n42\n17\n")
	if p := b.post("/saved-groups", form); p.status != http.StatusSeeOther || p.location != "/saved-groups/vip-accounts" {
		t.Fatalf("create: %d %s", p.status, p.location)
	}
	doc, _ := h.svc.Get(t.Context(), experiments.KindSavedGroup, "vip-accounts")
	if !sameJSON(doc, `{"key":"vip-accounts","name":"VIP accounts","values":[17,42]}`) {
		t.Errorf("stored %s", doc)
	}
	h.create(experiments.KindExperiment, `{"key":"vip-pricing","variants":[{"key":"a"},{"key":"b"}],"targeting":{"account":{"$inGroup":"vip-accounts"}}}`)
	p := b.get("/saved-groups")
	if !hasTestID(p.body, "group-vip-accounts") || !strings.Contains(p.body, "17, 42") || !strings.Contains(p.body, `href="/experiments/vip-pricing"`) {
		t.Errorf("list lacks the group, its values or its user: %s", between(p.body, "<tbody>", "</tbody>"))
	}
	p = b.get("/saved-groups/vip-accounts")
	if !hasTestID(p.body, "group-form") || !strings.Contains(p.body, "17\n42") || !strings.Contains(p.body, `value="numbers" selected`) || !strings.Contains(p.body, "vip-pricing") {
		t.Errorf("edit page")
	}
	form = url.Values{"type": {"text"}, "values": {"ann@example.com\nbob@example.com"}, "name": {"VIPs"}}
	if p = b.post("/saved-groups/vip-accounts", form); p.status != http.StatusSeeOther {
		t.Fatalf("update: %d", p.status)
	}
	doc, _ = h.svc.Get(t.Context(), experiments.KindSavedGroup, "vip-accounts")
	if !sameJSON(doc, `{"key":"vip-accounts","name":"VIPs","values":["ann@example.com","bob@example.com"]}`) {
		t.Errorf("updated %s", doc)
	}
	// The test box of attribute segments sees saved groups.
	if p = b.post("/segments/test", url.Values{"condition": {`{"email":{"$inGroup":"vip-accounts"}}`}, "attributes": {`{"email":"bob@example.com"}`}}, "HX-Request", "true"); !strings.Contains(p.body, "Match.") {
		t.Errorf("segment test with the group: %s", p.body)
	}
	if p = b.get("/saved-groups/vip-accounts/delete"); !hasTestID(p.body, "confirm") || !strings.Contains(p.body, "Delete saved group") {
		t.Errorf("delete confirmation")
	}
	if p = b.post("/saved-groups/vip-accounts/delete", url.Values{}); p.status != http.StatusSeeOther {
		t.Fatalf("delete: %d", p.status)
	}
	if _, err := h.svc.Get(t.Context(), experiments.KindSavedGroup, "vip-accounts"); err == nil {
		t.Error("group still there")
	}
	v := h.signedIn("viewer@example.com", auth.Viewer)
	if p = v.get("/saved-groups/new"); p.status != http.StatusForbidden {
		t.Errorf("viewer new group: %d", p.status)
	}
}

// behavioralHarness has real in-memory memberships (what /v1/decide reads) and the
// segment engine's membership table for the hour's activity.
func behavioralHarness(t *testing.T) (*harness, *experiments.MemberSet, *segstore.Store) {
	members := experiments.NewMemberSet()
	var store *segstore.Store
	h := newHarnessDeps(t, func(_ experiments.Store, pool *pgxpool.Pool, d *dashboard.Deps) {
		store = segstore.New(pool)
		d.Members, d.Activity = members, activity{store}
	})
	return h, members, store
}

type activity struct{ s *segstore.Store }

func (a activity) SegmentActivity(ctx context.Context, key string) (int64, int64, error) {
	st, err := a.s.Stats(ctx, key)
	return st.EnteredHour, st.ExitedHour, err
}

func TestBehavioralSegmentEditor(t *testing.T) {
	t.Parallel()
	h, members, store := behavioralHarness(t)
	b := h.signedIn("ed@example.com", auth.Editor)
	p := b.get("/segments/new?kind=behavioral")
	if p.status != 200 || !hasTestID(p.body, "rule-builder") || !hasTestID(p.body, "clause-0") {
		t.Fatalf("new behavioural form: %d", p.status)
	}
	form := url.Values{"kind": {"behavioral"}, "key": {"high-intent"}, "name": {"High intent"}, "ttl": {"30m"}, "rule_mode": {"builder"}, "rule_combine": {"and"},
		"clauses": {"1"}, "c0_shape": {"count"}, "c0_event": {"product_view"}, "c0_count": {"3"}, "c0_where": {`{"category":"shoes"}`}, "c0_within": {"40d"}, "c0_steps": {"1"}, "op": {"save"}}
	if p = b.post("/segments", form); p.status != http.StatusUnprocessableEntity || !strings.Contains(p.body, "Rule (within)") {
		t.Fatalf("window over 30 days: %d", p.status)
	}
	form.Set("c0_within", "10m")
	form.Set("c0_where", `{category}`)
	if p = b.post("/segments", form); p.status != http.StatusUnprocessableEntity || !strings.Contains(p.body, "Rule (where)") {
		t.Fatalf("bad where: %d", p.status)
	}
	form.Set("c0_where", `{"category":"shoes"}`)
	if p = b.post("/segments", form); p.status != http.StatusSeeOther {
		t.Fatalf("save: %d\n%s", p.status, p.body)
	}
	doc, _ := h.svc.Get(t.Context(), experiments.KindSegment, "high-intent")
	if !sameJSON(doc, `{"key":"high-intent","name":"High intent","kind":"behavioral","rule":{"event":"product_view","where":{"category":"shoes"},"count_gte":3,"within":"10m"},"ttl":"30m","status":"published","version":1}`) {
		t.Errorf("stored %s", doc)
	}

	if p = b.get("/segments/high-intent"); !strings.Contains(p.body, `name="c0_within" value="10m"`) || !strings.Contains(p.body, `name="ttl" value="30m"`) ||
		!strings.Contains(p.body, `name="c0_count" value="3"`) || !strings.Contains(between(p.body, `data-testid="rule-summary"`, "</p>"), `3× product_view where {&#34;category&#34;:&#34;shoes&#34;} within 10 minutes`) {
		t.Errorf("edit page does not show the rule as saved")
	}

	// A second test, a sequence with an absence, joined by "any".
	form.Set("op", "add-clause")
	if p = b.post("/segments", url.Values(cloneValues(form, "key", "cart"))); p.status != 200 || !hasTestID(p.body, "clause-1") {
		t.Fatalf("add clause: %d", p.status)
	}
	cart := cloneValues(form, "key", "cart")
	for k, v := range map[string]string{"clauses": "2", "rule_combine": "or", "c1_shape": "sequence", "c1_steps": "1", "c1_s0_event": "add_to_cart",
		"c1_within": "1d", "c1_absent_event": "purchase", "c1_absent_within": "30m", "op": "save"} {
		cart.Set(k, v)
	}
	if p = b.post("/segments", cart); p.status != http.StatusSeeOther {
		t.Fatalf("save cart: %d\n%s", p.status, p.body)
	}
	doc, _ = h.svc.Get(t.Context(), experiments.KindSegment, "cart")
	var s experiments.Segment
	_ = json.Unmarshal(doc, &s)
	if !sameJSON(s.Rule, `{"or":[{"event":"product_view","where":{"category":"shoes"},"count_gte":3,"within":"10m"},
		{"sequence":[{"event":"add_to_cart"}],"within":"24h","absent":{"event":"purchase","within":"30m"}}]}`) {
		t.Errorf("stored rule %s", s.Rule)
	}
	// Errors inside the or name their clause.
	cart.Set("c1_absent_within", "2d")
	if p = b.post("/segments/cart", cart); p.status != http.StatusUnprocessableEntity || !strings.Contains(p.body, "Rule (or[1].absent.within)") {
		t.Errorf("absent longer than the window: %d", p.status)
	}

	// JSON mode round trip, and a rule the builder cannot show.
	cart.Set("op", "rule-to-json")
	if p = b.post("/segments/cart", cart); p.status != 200 || !strings.Contains(p.body, `id="rule_json"`) {
		t.Fatalf("to json: %d", p.status)
	}
	nested := `{"and":[{"or":[{"event":"click","within":"1h"},{"event":"page_view","within":"1h"}]},{"event":"purchase","within":"168h"}]}`
	jf := url.Values{"kind": {"behavioral"}, "rule_mode": {"json"}, "rule_json": {nested}, "ttl": {""}, "op": {"save"}}
	if p = b.post("/segments/cart", jf); p.status != http.StatusSeeOther {
		t.Fatalf("save json: %d\n%s", p.status, p.body)
	}
	if p = b.get("/segments/cart"); !strings.Contains(p.body, `id="rule_json"`) {
		t.Errorf("nested rule not shown as JSON")
	}
	jf.Set("op", "rule-to-builder")
	if p = b.post("/segments/cart", jf); !strings.Contains(p.body, "more than the builder can show") {
		t.Errorf("to builder of a nested rule: %d", p.status)
	}

	// Sizes: members now from memory, the hour's entries and exits from Postgres.
	now := time.Now()
	members.Set("high-intent", "u1", true)
	members.Set("high-intent", "u2", true)
	if err := store.Apply(t.Context(), []segments.Change{{Kind: segments.Enter, UserID: "u1", Segment: "high-intent", At: now},
		{Kind: segments.Enter, UserID: "u2", Segment: "high-intent", At: now}, {Kind: segments.Enter, UserID: "u3", Segment: "high-intent", At: now.Add(-2 * time.Minute)},
		{Kind: segments.Exit, UserID: "u3", Segment: "high-intent", At: now.Add(-time.Minute)}}); err != nil {
		t.Fatal(err)
	}
	p = b.get("/segments")
	if !strings.Contains(p.body, "3× product_view") || !strings.Contains(p.body, `hx-get="/segments/high-intent/size?compact=1"`) {
		t.Errorf("list lacks the rule summary or the live size")
	}
	if got := between(p.body, `data-testid="size-high-intent"`, "</td>"); !strings.Contains(got, ">2<") {
		t.Errorf("list size cell %q", got)
	}
	p = b.get("/segments/high-intent")
	if !hasTestID(p.body, "segment-size") || !strings.Contains(between(p.body, `data-testid="members-now"`, "</dd>"), "2") ||
		!strings.Contains(between(p.body, `data-testid="exited-hour"`, "</dd>"), "1") || !strings.Contains(between(p.body, `data-testid="entered-hour"`, "</dd>"), "2") {
		t.Errorf("size card: %s", between(p.body, `data-testid="segment-size"`, "</section>"))
	}
	if p = b.get("/segments/high-intent/size"); p.status != 200 || strings.Contains(p.body, "<html") || !hasTestID(p.body, "members-now") {
		t.Errorf("size fragment: %d", p.status)
	}
	if p = b.get("/segments/nope/size"); p.status != 404 {
		t.Errorf("size of a missing segment: %d", p.status)
	}
	for user, want := range map[string]string{"u1": "Member.", "u9": "Not a member."} {
		if p = b.post("/segments/high-intent/check", url.Values{"user_id": {user}}, "HX-Request", "true"); !strings.Contains(p.body, want) {
			t.Errorf("check %s: %s", user, p.body)
		}
	}
}

func cloneValues(v url.Values, kv ...string) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out.Set(kv[i], kv[i+1])
	}
	return out
}

// between returns the text after the first start and before the next end.
func between(s, start, end string) string {
	_, after, ok := strings.Cut(s, start)
	if !ok {
		return ""
	}
	before, _, _ := strings.Cut(after, end)
	return before
}

// A behavioural segment saved as a draft keeps decisions on the published version
// while its preview fills; publishing, republishing an earlier version and
// discarding a draft work from the page.
func TestSegmentDrafts(t *testing.T) {
	t.Parallel()
	h, members, _ := behavioralHarness(t)
	h.create(experiments.KindSegment, `{"key":"intent","kind":"behavioral","rule":{"event":"product_view","count_gte":3,"within":"10m"}}`)
	b := h.signedIn("ed@example.com", auth.Editor)
	b.get("/segments/intent")
	form := url.Values{"kind": {"behavioral"}, "rule_mode": {"builder"}, "rule_combine": {"and"}, "clauses": {"1"}, "c0_shape": {"count"},
		"c0_event": {"product_view"}, "c0_count": {"5"}, "c0_within": {"10m"}, "c0_steps": {"1"}, "ttl": {""}, "op": {"draft"}}
	if p := b.post("/segments/intent", form); p.status != http.StatusSeeOther {
		t.Fatalf("save draft: %d\n%s", p.status, p.body)
	}
	var s experiments.Segment
	doc, _ := h.svc.Get(t.Context(), experiments.KindSegment, "intent")
	_ = json.Unmarshal(doc, &s)
	if !sameJSON(s.Rule, `{"event":"product_view","count_gte":3,"within":"10m"}`) || s.Draft == nil || !sameJSON(s.Draft.Rule, `{"event":"product_view","count_gte":5,"within":"10m"}`) {
		t.Fatalf("after saving a draft: %s", doc)
	}
	members.Set("intent"+segments.PreviewSuffix, "u1", true)
	p := b.get("/segments/intent")
	if !hasTestID(p.body, "draft-banner") || !strings.Contains(p.body, `name="c0_count" value="5"`) || !strings.Contains(between(p.body, `data-testid="preview-size"`, "</p>"), "1") ||
		!hasTestID(p.body, "segment-versions") || !strings.Contains(p.body, "Editing draft v2") {
		t.Errorf("editor with a draft: banner %v", hasTestID(p.body, "draft-banner"))
	}
	if p = b.get("/segments"); !strings.Contains(between(p.body, `data-testid="segment-intent"`, "</tr>"), "draft v2") {
		t.Errorf("list does not mark the draft")
	}
	if p = b.post("/segments/intent/publish", url.Values{}); p.status != http.StatusSeeOther {
		t.Fatalf("publish: %d", p.status)
	}
	doc, _ = h.svc.Get(t.Context(), experiments.KindSegment, "intent")
	s = experiments.Segment{}
	_ = json.Unmarshal(doc, &s)
	if s.Version != 2 || s.Draft != nil || !sameJSON(s.Rule, `{"event":"product_view","count_gte":5,"within":"10m"}`) {
		t.Errorf("after publishing: %s", doc)
	}
	// Roll back to version 1 from the versions card.
	if p = b.get("/segments/intent"); !hasTestID(p.body, "republish-1") {
		t.Fatalf("no republish button for v1")
	}
	if p = b.post("/segments/intent/publish", url.Values{"version": {"1"}}); p.status != http.StatusSeeOther {
		t.Fatalf("republish v1: %d", p.status)
	}
	doc, _ = h.svc.Get(t.Context(), experiments.KindSegment, "intent")
	if !strings.Contains(string(doc), `"count_gte": 3`) && !strings.Contains(string(doc), `"count_gte":3`) {
		t.Errorf("after republishing v1: %s", doc)
	}
	// A draft can be dropped again.
	b.post("/segments/intent", form)
	if p = b.post("/segments/intent/discard", url.Values{}); p.status != http.StatusSeeOther {
		t.Fatalf("discard: %d", p.status)
	}
	if doc, _ = h.svc.Get(t.Context(), experiments.KindSegment, "intent"); strings.Contains(string(doc), `"draft"`) {
		t.Errorf("draft still there: %s", doc)
	}
	if p = b.post("/segments/intent/discard", url.Values{}); p.status != http.StatusConflict {
		t.Errorf("discarding no draft: %d", p.status)
	}
	v := h.signedIn("viewer@example.com", auth.Viewer)
	v.get("/segments/intent")
	if p = v.post("/segments/intent/publish", url.Values{}); p.status != http.StatusForbidden {
		t.Errorf("viewer publishing: %d", p.status)
	}
}
