package dashboard_test

import (
	"context"
	"fmt"
	"html"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/google/uuid"

	"github.com/liftlab/lift/experiments"
	"github.com/liftlab/lift/experiments/chstore"
	"github.com/liftlab/lift/experiments/stats"
	"github.com/liftlab/lift/internal/testenv"
	"github.com/liftlab/lift/web/auth"
	"github.com/liftlab/lift/web/dashboard"
)

const checkout = `{"key":"checkout","name":"Express checkout","status":"running",
	"variants":[{"key":"control","weight":0.5},{"key":"express","weight":0.5}],
	"goal":{"event":"purchase","kind":"conversion","window":"72h"},
	"metrics":[{"key":"revenue","event":"purchase","kind":"value","window":"72h"},{"key":"retention","event":"return_visit","kind":"conversion","role":"guardrail"}],
	"analysis":{"cuped":false,"sequential":false,"min_users":0,"min_runtime":"0s"}}`

// arm describes the synthetic users of one variant: how many, how many buy (for 20
// units each) and how many come back (the guardrail; the engine treats a significant
// drop of a guardrail as harm).
type arm struct {
	variant                  string
	users, buyers, returners int
}

// resultsHarness is the dashboard with a real ResultsService over the harness's
// Postgres and a fresh ClickHouse database; data inserts exposures and events there.
func resultsHarness(t testing.TB) (*harness, func(experiment string, arms ...arm)) {
	t.Helper()
	addr, db := testenv.ClickHouse(t)
	events, err := chstore.Open(addr, db)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { events.Close() })
	h := newHarnessWith(t, func(store experiments.Store) dashboard.ResultsReader {
		return &experiments.ResultsService{Store: store, Events: events}
	})
	return h, func(experiment string, arms ...arm) { insertArms(t, addr, db, experiment, arms) }
}

// insertArms writes exposures over three days (first exposures spread evenly, users
// alternating between segments "new" and "returning") and the purchases and refunds
// an hour after exposure, with clickhouse-go's batch API.
func insertArms(t testing.TB, addr, db, experiment string, arms []arm) {
	t.Helper()
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{addr}, Auth: clickhouse.Auth{Database: db, Username: "default"}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx := context.Background()
	start := time.Now().UTC().Add(-72 * time.Hour).Truncate(time.Hour)
	exps, err := conn.PrepareBatch(ctx, "INSERT INTO exposures (event_id, ts, user_id, experiment, variant, segment, assignment_probability)")
	if err != nil {
		t.Fatal(err)
	}
	evs, err := conn.PrepareBatch(ctx, "INSERT INTO events (event_id, type, user_id, ts, received_at, value, properties)")
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range arms {
		for i := range a.users {
			user := fmt.Sprintf("%s-%s-%d", experiment, a.variant, i)
			at := start.Add(time.Duration(i%3)*24*time.Hour + time.Duration(i)*time.Second)
			segment := []string{"new", "returning"}[i%2]
			if err := exps.Append(uuid.New(), at, user, experiment, a.variant, segment, 0.5); err != nil {
				t.Fatal(err)
			}
			if i < a.buyers {
				if err := evs.Append(uuid.New(), "purchase", user, at.Add(time.Hour), at.Add(time.Hour), 20.0, "{}"); err != nil {
					t.Fatal(err)
				}
			}
			if i < a.returners {
				if err := evs.Append(uuid.New(), "return_visit", user, at.Add(2*time.Hour), at.Add(2*time.Hour), 0.0, "{}"); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if err := exps.Send(); err != nil {
		t.Fatal(err)
	}
	if err := evs.Send(); err != nil {
		t.Fatal(err)
	}
}

// textOf returns the text inside the element with the data-testid, up to its first
// child element.
func textOf(t *testing.T, body, id string) string {
	t.Helper()
	m := regexp.MustCompile(`data-testid="` + regexp.QuoteMeta(id) + `"[^>]*>([^<]*)`).FindStringSubmatch(body)
	if m == nil {
		t.Errorf("no element with data-testid %q", id)
		return ""
	}
	return strings.TrimSpace(html.UnescapeString(m[1]))
}

func signed(x float64) string { return strings.Replace(fmt.Sprintf("%+.1f%%", 100*x), "-", "−", 1) }

func pText(p float64) string {
	if p < 0.001 {
		return "< 0.001"
	}
	return fmt.Sprintf("%.3f", p)
}

func TestResultsPage(t *testing.T) {
	t.Parallel()
	h, insert := resultsHarness(t)
	h.create(experiments.KindExperiment, checkout)
	b := h.signedIn("pm@example.com", auth.Viewer)

	// Before any exposure: the placeholder, saying why.
	p := b.get("/experiments/checkout")
	if p.status != 200 || !hasTestID(p.body, "results-placeholder") || hasTestID(p.body, "results") {
		t.Fatalf("no data yet: %d, placeholder %v", p.status, hasTestID(p.body, "results-placeholder"))
	}

	control, express := arm{"control", 1000, 100, 10}, arm{"express", 1000, 150, 12}
	insert("checkout", control, express)
	// The page reuses results without users for a few seconds; its link asks again.
	if !hasTestID(p.body, "check-again") {
		t.Error("placeholder has no link to check again")
	}
	p = b.get("/experiments/checkout?refresh=1")
	if p.status != 200 || hasTestID(p.body, "results-placeholder") || !hasTestID(p.body, "results") {
		t.Fatalf("with data: %d\n%s", p.status, p.body)
	}
	want, err := stats.AnalyzeBinomial(stats.BinomialInput{Weights: []float64{0.5, 0.5}, Variants: []stats.VariantCounts{
		{Key: "control", Users: 1000, Conversions: 100}, {Key: "express", Users: 1000, Conversions: 150}}}, stats.DefaultOptions)
	if err != nil {
		t.Fatal(err)
	}
	e := want.Variants[1]
	checks := []struct{ id, want string }{
		{"total-users", "2,000"},
		{"multi-variant-users", "0"},
		{"goal-control-users", "1,000"},
		{"goal-control-count", "100"},
		{"goal-control-value", "10.00%"},
		{"goal-express-users", "1,000"},
		{"goal-express-count", "150"},
		{"goal-express-value", "15.00%"},
		{"goal-express-lift", signed(*e.Lift)},
		{"ci-express", signed(*e.CILow) + " to " + signed(*e.CIHigh)},
		{"goal-express-p", pText(*e.PValue)},
		{"goal-express-chance", fmt.Sprintf("%.1f%%", 100**e.ChanceToBeatControl)},
		{"revenue-control-count", "2,000"},
		{"revenue-express-value", "3.00"},
		{"retention-express-count", "12"},
		{"role-goal", "goal"},
		{"role-revenue", "secondary"},
		{"role-retention", "guardrail"},
		{"recommendation-decision", "Ship express"},
		{"srm-status", ""},
	}
	for _, c := range checks {
		t.Run(c.id, func(t *testing.T) {
			if got := textOf(t, p.body, c.id); got != c.want {
				t.Errorf("%s = %q, want %q", c.id, got, c.want)
			}
		})
	}
	if hasTestID(p.body, "srm-banner") {
		t.Error("SRM banner on a 50/50 split of 1000/1000 users")
	}
	// The control is named once: its key says it, and the lift column's baseline.
	if row := regexp.MustCompile(`(?s)data-testid="goal-control".*?</tr>`).FindString(p.body); strings.Count(row, ">control<") != 1 {
		t.Errorf("the control row says control %d times: %s", strings.Count(row, ">control<"), row)
	}
	if !strings.Contains(textOf(t, p.body, "data-freshness"), "ago") {
		t.Error("no data freshness")
	}
	for _, id := range []string{"daily-chart", "segments-table", "interval-express", "segment-new-express", "segment-returning-control"} {
		if !hasTestID(p.body, id) {
			t.Errorf("no %s", id)
		}
	}
	// The charts are labelled for screen readers.
	if !strings.Contains(p.body, `aria-labelledby="daily-title daily-desc"`) || !strings.Contains(p.body, "<title id=\"daily-title\">Cumulative conversion rate by day of first exposure</title>") {
		t.Error("daily chart is not labelled")
	}
	if got := strings.Count(p.body, "<polyline"); got != 2 {
		t.Errorf("daily chart has %d lines, want one per variant", got)
	}

	// The experiment page filled the list's cache: the headline is the best
	// treatment's lift, the experiment is healthy.
	list := b.get("/experiments")
	if got := textOf(t, list.body, "headline-checkout"); got != "" {
		t.Errorf("headline cell starts with text %q", got)
	}
	cell := regexp.MustCompile(`(?s)data-testid="headline-checkout".*?</td>`).FindString(list.body)
	if !strings.Contains(cell, signed(*e.Lift)) || !strings.Contains(cell, "express") || !strings.Contains(cell, ">ok<") {
		t.Errorf("headline cell: %s", cell)
	}
}

func TestResultsSRMAndGuardrail(t *testing.T) {
	t.Parallel()
	h, insert := resultsHarness(t)
	h.create(experiments.KindExperiment, checkout)
	h.create(experiments.KindExperiment, strings.Replace(strings.Replace(checkout, `"checkout"`, `"refundy"`, 1), "Express checkout", "Refundy", 1))
	b := h.signedIn("pm@example.com", auth.Viewer)

	// 1000 against 800 users on a 50/50 split: the assignment is broken.
	insert("checkout", arm{"control", 1000, 100, 10}, arm{"express", 800, 90, 8})
	p := b.get("/experiments/checkout?refresh=1")
	if p.status != 200 || !hasTestID(p.body, "srm-banner") {
		t.Fatalf("SRM: %d, banner %v", p.status, hasTestID(p.body, "srm-banner"))
	}
	if got := textOf(t, p.body, "recommendation-decision"); got != "Stop" {
		t.Errorf("recommendation with SRM: %q", got)
	}
	if got := textOf(t, p.body, "recommendation-reason"); !strings.Contains(got, "Sample ratio mismatch") {
		t.Errorf("reason with SRM: %q", got)
	}
	if !strings.Contains(p.body, "(SRM check p &lt; 0.001)") || strings.Contains(p.body, "p = &lt;") {
		t.Errorf("SRM p-value written as %q", regexp.MustCompile(`SRM check [^)]*\)`).FindString(p.body))
	}

	// Returning users down from 50% to 40%: a harmed guardrail stops the experiment.
	insert("refundy", arm{"control", 1000, 100, 500}, arm{"express", 1000, 150, 400})
	p = b.get("/experiments/refundy?refresh=1")
	if got := textOf(t, p.body, "recommendation-decision"); got != "Stop" || hasTestID(p.body, "srm-banner") {
		t.Errorf("guardrail: recommendation %q, SRM banner %v", got, hasTestID(p.body, "srm-banner"))
	}
	if got := textOf(t, p.body, "retention-express-lift"); got != "−20.0%" {
		t.Errorf("retention lift: %q", got)
	}

	list := b.get("/experiments")
	for key, want := range map[string]string{"checkout": ">srm<", "refundy": ">guardrail harmed<"} {
		cell := regexp.MustCompile(`(?s)data-testid="headline-` + key + `".*?</td>`).FindString(list.body)
		if !strings.Contains(cell, want) {
			t.Errorf("%s health: %s", key, cell)
		}
	}
}

func TestResultsKeepRunning(t *testing.T) {
	t.Parallel()
	h, insert := resultsHarness(t)
	h.create(experiments.KindExperiment, checkout)
	b := h.signedIn("pm@example.com", auth.Viewer)
	insert("checkout", arm{"control", 300, 30, 0}, arm{"express", 300, 33, 0})
	p := b.get("/experiments/checkout?refresh=1")
	if got := textOf(t, p.body, "recommendation-decision"); got != "Keep running" {
		t.Errorf("recommendation: %q", got)
	}
	if got := textOf(t, p.body, "users-needed"); got == "" || !regexp.MustCompile(`^[0-9,]+$`).MatchString(got) {
		t.Errorf("users needed: %q", got)
	}
	// Said once, in one format: the reason does not repeat the number.
	if got := textOf(t, p.body, "recommendation-reason"); regexp.MustCompile(`[0-9]{3}`).MatchString(got) {
		t.Errorf("the reason repeats the users needed: %q", got)
	}
}

// TestResultsUnavailable: with ClickHouse unreachable the page still renders (200),
// with the placeholder and a clear message.
func TestResultsUnavailable(t *testing.T) {
	t.Parallel()
	addr, db := testenv.ClickHouse(t)
	proxy := testenv.NewProxy(t, addr)
	events, err := chstore.Open(proxy.Addr(), db)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { events.Close() })
	proxy.Cut()
	h := newHarnessWith(t, func(store experiments.Store) dashboard.ResultsReader {
		return &experiments.ResultsService{Store: store, Events: events}
	})
	h.create(experiments.KindExperiment, checkout)
	b := h.signedIn("pm@example.com", auth.Viewer)
	start := time.Now()
	p := b.get("/experiments/checkout")
	if p.status != 200 || !hasTestID(p.body, "results-placeholder") || !strings.Contains(textOf(t, p.body, "results-unavailable"), "ClickHouse") {
		t.Fatalf("ClickHouse down: %d\n%s", p.status, p.body)
	}
	t.Logf("experiment page with ClickHouse down: %v", time.Since(start))
	if p := b.get("/experiments"); p.status != 200 || !strings.Contains(p.body, "Awaiting events") {
		t.Errorf("list with ClickHouse down: %d", p.status)
	}
}
