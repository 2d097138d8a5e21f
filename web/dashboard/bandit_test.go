package dashboard_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/liftlab/lift/bandit"
	"github.com/liftlab/lift/experiments"
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

func recoReport(winner, candidate string) bandit.Report {
	at := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	return bandit.Report{Experiment: "reco", Winner: winner, Candidate: candidate, WinnerThreshold: 0.95,
		Segments: []bandit.SegmentReport{{Version: 3, ComputedAt: at.Add(2 * time.Hour), Regret: 12.5,
			Arms: []bandit.ArmReport{
				{Variant: "a", Weight: 0.25, PBest: 0.03, Posterior: bandit.Summary{Mean: 0.04, Low: 0.03, High: 0.05}, Exposures: 1000, NaiveMean: 0.04, IPWMean: ptr(0.04)},
				{Variant: "b", Weight: 0.75, PBest: 0.97, Posterior: bandit.Summary{Mean: 0.06, Low: 0.05, High: 0.07}, Exposures: 3000, NaiveMean: 0.06, IPWMean: ptr(0.06), IPWLift: ptr(0.5)},
			},
			History: []bandit.HistoryPoint{{At: at, Weights: []float64{0.5, 0.5}}, {At: at.Add(time.Hour), Weights: []float64{0.4, 0.6}}, {At: at.Add(2 * time.Hour), Weights: []float64{0.25, 0.75}}},
		}}}
}

func banditHarness(t *testing.T, r dashboard.BanditReporter) *browser {
	h := newHarnessDeps(t, func(_ experiments.Store, _ *pgxpool.Pool, d *dashboard.Deps) { d.Bandits = r })
	h.create(experiments.KindExperiment, recoBandit)
	h.create(experiments.KindExperiment, checkout)
	return h.signedIn("pm@example.com", auth.Viewer)
}

func TestBanditSection(t *testing.T) {
	tests := []struct {
		name     string
		bandits  dashboard.BanditReporter
		want     []string // test ids that must be there
		wantText map[string]string
	}{
		{"candidate", fakeBandits{rep: recoReport("", "b")}, []string{"bandit-candidate", "weights-chart-all", "bandit-arms-all"},
			map[string]string{"weight-all-a": "25%", "weight-all-b": "75%", "pbest-all-b": "97%", "regret-all": "12.5", "ipw-lift-all-b": "+50.0%"}},
		{"winner", fakeBandits{rep: recoReport("b", "")}, []string{"bandit-winner", "weights-chart-all"}, map[string]string{"pbest-all-a": "3%"}},
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

func TestBanditWeightsChart(t *testing.T) {
	b := banditHarness(t, fakeBandits{rep: recoReport("", "b")})
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
