package dashboard_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/liftlab/lift/bandit"
	"github.com/liftlab/lift/experiments"
	"github.com/liftlab/lift/experiments/stats"
	"github.com/liftlab/lift/ingest"
	ingestpg "github.com/liftlab/lift/ingest/pgstore"
	"github.com/liftlab/lift/web/auth"
	"github.com/liftlab/lift/web/dashboard"
)

const recoBandit = `{"key":"reco","name":"Recommendations","type":"bandit","status":"running",
	"variants":[{"key":"a"},{"key":"b"}],"goal":{"event":"purchase","kind":"conversion"}}`

// fakeBandits answers every report with rep or err.
type fakeBandits struct {
	rep bandit.Report
	err error
}

func (f fakeBandits) BanditReport(context.Context, string) (bandit.Report, error) {
	return f.rep, f.err
}

func ptr(x float64) *float64 { return &x }

// recoReport is the allocation's report: its weights, and the allocation's own
// P(best) and posteriors, which the page must not show beside the results'.
func recoReport(winner string) bandit.Report {
	at := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	return bandit.Report{Experiment: "reco", Winner: winner, WinnerThreshold: 0.95,
		Segments: []bandit.SegmentReport{{Version: 3, ComputedAt: at.Add(2 * time.Hour), Regret: 12.5,
			Arms: []bandit.ArmReport{
				{Variant: "a", Weight: 0.25, PBest: 0.11, Posterior: bandit.Summary{Mean: 0.04, Low: 0.03, High: 0.05}, Exposures: 1000, NaiveMean: 0.04},
				{Variant: "b", Weight: 0.75, PBest: 0.89, Posterior: bandit.Summary{Mean: 0.06, Low: 0.05, High: 0.07}, Exposures: 3000, NaiveMean: 0.06},
			},
			History: []bandit.HistoryPoint{{At: at, Weights: []float64{0.5, 0.5}}, {At: at.Add(time.Hour), Weights: []float64{0.4, 0.6}}, {At: at.Add(2 * time.Hour), Weights: []float64{0.25, 0.75}}},
		}}}
}

// fakeResults answers every experiment's results with res.
type fakeResults struct{ res experiments.Results }

func (f fakeResults) Results(context.Context, string) (experiments.Results, error) { return f.res, nil }

// recoResults are the bandit's results: its arms weighted over its periods, and the
// recommendation to declare b.
func recoResults(decision string) experiments.Results {
	conv := func(x float64) *float64 { return &x }
	return experiments.Results{Experiment: "reco", Type: "bandit", Status: "running", Users: 4000,
		ComputedAt: time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC),
		Metrics: []experiments.MetricResult{{Key: "goal", Role: "goal", Event: "purchase", Kind: "conversion", Window: "168h0m0s",
			Variants: []stats.VariantResult{
				{Key: "a", Users: 1000, Conversions: conv(40), Value: 0.045, ValueCILow: ptr(0.032), ValueCIHigh: ptr(0.058), PBest: ptr(0.03), ExpectedLoss: ptr(0.015), NaiveValue: ptr(0.04)},
				{Key: "b", Users: 3000, Conversions: conv(180), Value: 0.062, ValueCILow: ptr(0.053), ValueCIHigh: ptr(0.071), PBest: ptr(0.97), ExpectedLoss: ptr(0.0001), NaiveValue: ptr(0.06)},
			}}},
		Recommendation: experiments.Recommendation{Decision: decision, Variant: "b", Reason: "b is best"}}
}

func banditHarness(t *testing.T, r dashboard.BanditReporter) *browser {
	return banditHarnessWith(t, r, recoResults("ship"))
}

func banditHarnessWith(t *testing.T, r dashboard.BanditReporter, res experiments.Results) *browser {
	h := newHarnessDeps(t, func(_ experiments.Store, _ *pgxpool.Pool, d *dashboard.Deps) {
		d.Bandits = r
		d.Results = fakeResults{res}
	})
	h.create(experiments.KindExperiment, recoBandit)
	h.create(experiments.KindExperiment, checkout)
	return h.signedIn("pm@example.com", auth.Viewer)
}

func TestBanditSection(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		bandits  dashboard.BanditReporter
		want     []string // test ids that must be there
		wantText map[string]string
	}{
		// Weights from the report, every number about the arms from the results:
		// P(best) 97% (not the allocation's 89%), the weighted 6.20% (not the plain 6%).
		{"candidate", fakeBandits{rep: recoReport("")}, []string{"bandit-candidate", "weights-chart-all", "bandit-arms-all"},
			map[string]string{"weight-all-a": "25%", "weight-all-b": "75%", "pbest-all-b": "97%", "regret-all": "12.5", "mean-all-b": "6.20%",
				"users-all-b": "3,000", "goal-b-pbest": "97%", "goal-b-value": "6.20%", "live-weight-b": "75%"}},
		{"winner", fakeBandits{rep: recoReport("b")}, []string{"bandit-winner", "weights-chart-all"}, map[string]string{"pbest-all-a": "3%"}},
		{"no weights yet", fakeBandits{rep: bandit.Report{Experiment: "reco"}}, []string{"bandit-empty"}, nil},
		{"store down", fakeBandits{err: errors.New("clickhouse: connection refused")}, []string{"bandit-unavailable"}, nil},
		{"no reporter", nil, []string{"bandit-empty"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := banditHarness(t, tt.bandits)
			p := b.get("/experiments/reco")
			if p.status != http.StatusOK {
				t.Fatalf("status %d\n%s", p.status, p.body)
			}
			for _, id := range append(tt.want, "bandit") {
				if !hasTestID(p.body, id) {
					t.Errorf("no %s", id)
				}
			}
			for id, want := range tt.wantText {
				if got := textOf(t, p.body, id); got != want {
					t.Errorf("%s = %q, want %q", id, got, want)
				}
			}
			if strings.Contains(p.body, "connection refused") {
				t.Error("the page shows the raw store error")
			}
			if p := b.get("/experiments/checkout"); p.status != http.StatusOK || hasTestID(p.body, "bandit") {
				t.Errorf("A/B experiment: status %d, bandit section %v", p.status, hasTestID(p.body, "bandit"))
			}
		})
	}
}

// TestBanditPageOneSetOfNumbers: on a bandit's page no arm is the control unless the
// bandit names one, there is no sample-ratio check, the allocation's own P(best)
// appears nowhere, and the experiments list shows the results' leader.
func TestBanditPageOneSetOfNumbers(t *testing.T) {
	t.Parallel()
	b := banditHarness(t, fakeBandits{rep: recoReport("")})
	p := b.get("/experiments/reco")
	for _, id := range []string{"srm-status", "srm-banner", "multi-variant-users"} {
		if hasTestID(p.body, id) {
			t.Errorf("a bandit's page has %s", id)
		}
	}
	if strings.Contains(p.body, ">control<") || strings.Contains(p.body, ">baseline<") {
		t.Error("a bandit without bandit.control shows a control")
	}
	if strings.Contains(p.body, ">89%<") || strings.Contains(p.body, ">11%<") {
		t.Error("the allocation's P(best) is on the page beside the results'")
	}
	if got := textOf(t, p.body, "allocation"); got != "adaptive" {
		t.Errorf("allocation %q", got)
	}
	list := b.get("/experiments")
	cell := regexp.MustCompile(`(?s)data-testid="headline-reco".*?</td>`).FindString(list.body)
	if !strings.Contains(cell, "P(best) 97%") || !strings.Contains(cell, ">b<") || strings.Contains(cell, "srm") {
		t.Errorf("list headline: %s", cell)
	}
}

// TestBanditFallbackCard: with bandit segments, the global bandit is labelled as the
// fallback for users outside them, and left out when nobody is there.
func TestBanditFallbackCard(t *testing.T) {
	t.Parallel()
	rep := recoReport("")
	seg := rep.Segments[0]
	seg.Segment = "new"
	rep.Segments = append(rep.Segments, seg)
	res := recoResults("keep_running")
	res.Segments = []experiments.GroupResult{{Group: "new", Variants: res.Metrics[0].Variants}}
	h := newHarnessDeps(t, func(_ experiments.Store, _ *pgxpool.Pool, d *dashboard.Deps) {
		d.Bandits = fakeBandits{rep: rep}
		d.Results = fakeResults{res}
	})
	h.create(experiments.KindSegment, `{"key":"new","kind":"attribute","condition":{"returning":{"$ne":true}}}`)
	h.create(experiments.KindExperiment, strings.Replace(recoBandit, `"goal"`, `"bandit":{"per_segment":["new"]},"goal"`, 1))
	b := h.signedIn("pm@example.com", auth.Viewer)
	p := b.get("/experiments/reco")
	if !hasTestID(p.body, "bandit-segment-new") || hasTestID(p.body, "bandit-segment-fallback") || hasTestID(p.body, "bandit-segment-all") {
		t.Errorf("nobody outside the segments: cards new %v, fallback %v, all %v", hasTestID(p.body, "bandit-segment-new"),
			hasTestID(p.body, "bandit-segment-fallback"), hasTestID(p.body, "bandit-segment-all"))
	}
	res.Segments = append(res.Segments, experiments.GroupResult{Group: "", Variants: res.Metrics[0].Variants})
	h = newHarnessDeps(t, func(_ experiments.Store, _ *pgxpool.Pool, d *dashboard.Deps) {
		d.Bandits = fakeBandits{rep: rep}
		d.Results = fakeResults{res}
	})
	h.create(experiments.KindSegment, `{"key":"new","kind":"attribute","condition":{"returning":{"$ne":true}}}`)
	h.create(experiments.KindExperiment, strings.Replace(recoBandit, `"goal"`, `"bandit":{"per_segment":["new"]},"goal"`, 1))
	p = h.signedIn("pm@example.com", auth.Viewer).get("/experiments/reco")
	if !hasTestID(p.body, "bandit-segment-fallback") || !strings.Contains(p.body, "Everyone else (fallback)") {
		t.Error("users outside the segments: no fallback card")
	}
}

func TestBanditWeightsChart(t *testing.T) {
	t.Parallel()
	b := banditHarness(t, fakeBandits{rep: recoReport("")})
	p := b.get("/experiments/reco")
	for _, want := range []string{"<title id=\"w-title-all\">Weights over time — All users</title>", "3 versions published", "Latest: a 25%, b 75%"} {
		if !strings.Contains(p.body, want) {
			t.Errorf("chart lacks %q", want)
		}
	}
	if n := strings.Count(p.body, `<polygon class="area`); n != 2 {
		t.Errorf("%d areas, want one per arm", n)
	}
}

func TestEventTypesPages(t *testing.T) {
	t.Parallel()
	var types *ingestpg.Store
	h := newHarnessDeps(t, func(_ experiments.Store, pool *pgxpool.Pool, d *dashboard.Deps) {
		types = ingestpg.New(pool)
		d.EventTypes = types
	})
	b := h.signedIn("pm@example.com", auth.Viewer)
	if p := b.get("/event-types"); p.status != http.StatusOK || !hasTestID(p.body, "empty") {
		t.Fatalf("empty list: status %d, empty state %v", p.status, hasTestID(p.body, "empty"))
	}
	for v, schema := range []string{`{"type":"object"}`, `{"type":"object","properties":{"plan":{"type":"string"}}}`} {
		if err := types.InsertType(context.Background(), ingest.EventType{Name: "signup", Version: v + 1, Schema: json.RawMessage(schema), CreatedAt: time.Now(), CreatedBy: "key:ci"}); err != nil {
			t.Fatal(err)
		}
	}
	p := b.get("/event-types")
	if p.status != http.StatusOK || !hasTestID(p.body, "event-types-table") || !strings.Contains(p.body, `href="/event-types"`) {
		t.Fatalf("list: status %d\n%s", p.status, p.body)
	}
	if got := textOf(t, p.body, "event-type-signup-version"); got != "v2" {
		t.Errorf("latest version %q, want v2", got)
	}
	p = b.get("/event-types/signup")
	if p.status != http.StatusOK || !hasTestID(p.body, "version-v1") || !hasTestID(p.body, "version-v2") {
		t.Fatalf("detail: status %d\n%s", p.status, p.body)
	}
	if !strings.Contains(p.body, "&#34;plan&#34;") && !strings.Contains(p.body, "&quot;plan&quot;") {
		t.Error("v2's schema is not shown")
	}
	if p := b.get("/event-types/nope"); p.status != http.StatusNotFound {
		t.Errorf("unknown type: status %d, want 404", p.status)
	}
}
