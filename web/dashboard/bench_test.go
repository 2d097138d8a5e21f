package dashboard_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/liftlab/lift/experiments"
	"github.com/liftlab/lift/web/auth"
	"github.com/liftlab/lift/web/dashboard"
)

// pageBudget is the most server time a page may take with the benchmark's data.
const pageBudget = 50 * time.Millisecond

// seedMany fills the configuration with 200 experiments (three in four running, so
// the list asks for 150 experiments' results), 200 flags and 50 segments.
func seedMany(h *harness) {
	for i := range 50 {
		h.create(experiments.KindSegment, fmt.Sprintf(`{"key":"seg-%d","name":"Segment %d","kind":"attribute","condition":{"country":{"$in":["US","CA"]},"plan":"pro-%d"}}`, i, i, i))
	}
	for i := range 200 {
		status := "running"
		if i%4 == 0 {
			status = "draft"
		}
		h.create(experiments.KindExperiment, fmt.Sprintf(`{"key":"exp-%d","name":"Experiment %d","status":%q,"variants":[{"key":"control","weight":0.5,"value":{"v":1}},{"key":"b","weight":0.5,"value":{"v":2}}],
			"targeting":{"country":{"$in":["US","CA"]}},"segments":["seg-%d"],"goal":{"event":"purchase","kind":"conversion"}}`, i, i, status, i%50))
		h.create(experiments.KindFlag, fmt.Sprintf(`{"key":"flag-%d","type":"boolean","default":false,"rules":[{"segment":"seg-%d","rollout":0.2,"value":true},{"experiment":"exp-%d"}]}`, i, i%50, i))
	}
}

var benchPages = []string{
	"/experiments", "/experiments/new", "/experiments/exp-7", "/experiments/exp-7/edit",
	"/flags", "/flags/new", "/flags/flag-7", "/segments", "/segments/seg-7", "/event-types", "/keys", "/users", "/audit",
}

// BenchmarkPages measures each page's server time (loopback HTTP included) against
// a configuration of 200 experiments, 200 flags and 50 segments, and fails a page
// whose mean exceeds pageBudget.
func BenchmarkPages(b *testing.B) {
	h := newHarness(b)
	seedMany(h)
	br := h.signedIn("bench@example.com", auth.Admin)
	for _, path := range benchPages {
		b.Run(path, func(b *testing.B) {
			start := time.Now()
			for b.Loop() {
				if p := br.get(path); p.status != http.StatusOK {
					b.Fatalf("GET %s: %d", path, p.status)
				}
			}
			if mean := time.Since(start) / time.Duration(b.N); mean > pageBudget {
				b.Errorf("GET %s takes %v on average, over the %v budget", path, mean, pageBudget)
			}
		})
	}
}

// TestPageBudget checks the budget in the ordinary test run, with a few requests per
// page, so a slow page fails `make test`, not just `make bench`.
func TestPageBudget(t *testing.T) {
	h, _ := resultsHarness(t)
	seedMany(h)
	br := h.signedIn("bench@example.com", auth.Admin)
	for _, path := range benchPages {
		br.get(path) // warm up
		const n = 5
		start := time.Now()
		for range n {
			if p := br.get(path); p.status != http.StatusOK {
				t.Fatalf("GET %s: %d", path, p.status)
			}
		}
		// The race detector slows everything several-fold; allow for it there.
		budget := pageBudget * raceFactor
		if mean := time.Since(start) / n; mean > budget {
			t.Errorf("GET %s takes %v on average, over the %v budget", path, mean, budget)
		}
	}
}

// BenchmarkResultsPage measures the experiment page with results of 2,000 users over
// three days: recomputed from ClickHouse on every request (?refresh=1) and served
// from the cache. Only the cached page is held to pageBudget; a recomputation costs
// what ClickHouse takes.
func BenchmarkResultsPage(b *testing.B) {
	h, insert := resultsHarness(b)
	h.create(experiments.KindExperiment, checkout)
	insert("checkout", arm{"control", 1000, 100, 500}, arm{"express", 1000, 150, 480})
	br := h.signedIn("bench@example.com", auth.Viewer)
	for _, path := range []string{"/experiments/checkout?refresh=1", "/experiments/checkout"} {
		b.Run(path, func(b *testing.B) {
			start := time.Now()
			for b.Loop() {
				if p := br.get(path); p.status != http.StatusOK || !hasTestID(p.body, "results") {
					b.Fatalf("GET %s: %d", path, p.status)
				}
			}
			if mean := time.Since(start) / time.Duration(b.N); mean > pageBudget && path == "/experiments/checkout" {
				b.Errorf("GET %s takes %v on average, over the %v budget", path, mean, pageBudget)
			}
		})
	}
}

// BenchmarkBanditPage measures a bandit experiment's page with a report of two arms
// and three weight versions; the reporter is a fake, so this is the page's own cost,
// not ClickHouse's.
func BenchmarkBanditPage(b *testing.B) {
	h := newHarnessDeps(b, func(_ experiments.Store, _ *pgxpool.Pool, d *dashboard.Deps) {
		d.Bandits = fakeBandits{rep: recoReport("", "b")}
	})
	h.create(experiments.KindExperiment, recoBandit)
	br := h.signedIn("bench@example.com", auth.Viewer)
	start := time.Now()
	for b.Loop() {
		if p := br.get("/experiments/reco"); p.status != http.StatusOK || !hasTestID(p.body, "weights-chart-all") {
			b.Fatalf("GET /experiments/reco: %d", p.status)
		}
	}
	if mean := time.Since(start) / time.Duration(b.N); mean > pageBudget {
		b.Errorf("GET /experiments/reco takes %v on average, over the %v budget", mean, pageBudget)
	}
}
