package main

import (
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/liftlab/lift/internal/testenv"
)

var consumerLagObserved = regexp.MustCompile(`(?m)^lift_consumer_lag_seconds_count [1-9]`)

// Every series the Grafana dashboard and the alert rules in docs/ops use is exported
// by a running lift (role all, after some traffic), and promtool accepts the rules
// and passes their unit tests.
func TestOpsDocsUseExportedMetrics(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.start(t)
	f.server.want(201, "POST", "/api/v1/experiments", heroBanner, nil)
	f.server.want(200, "POST", "/api/v1/experiments/hero-banner/start", "", nil)
	var d decideResp
	testenv.Eventually(t, 5*time.Second, "hero-banner to be served by split", func() bool {
		f.client.want(200, "POST", "/v1/decide", `{"user_id":"u1","attributes":{"country":"US"}}`, &d)
		return d.Decisions["hero-banner"].Reason == "split"
	})
	f.client.want(202, "POST", "/v1/events", `{"events":[{"type":"page_view","user_id":"u1"},{"type":"purchase","user_id":"u1","value":-1}]}`, nil)

	var exposition string
	scrape := func() string {
		resp := f.client.do("GET", "/metrics", "", nil)
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	// Consumers sample the queue and insert within their batch wait (1 s); the
	// worker's leaders report after their first round.
	testenv.Eventually(t, 30*time.Second, "the consumer and leader metrics", func() bool {
		exposition = scrape()
		// At least one batch inserted: the exposures may arrive in a batch of their own.
		return consumerLagObserved.MatchString(exposition) &&
			strings.Contains(exposition, `lift_queue_depth_messages{queue="lift.ingest"}`) &&
			strings.Contains(exposition, "lift_bandit_update_duration_seconds_count") &&
			strings.Contains(exposition, "lift_segment_checkpoint_bytes")
	})
	exported := map[string]bool{}
	for _, line := range strings.Split(exposition, "\n") {
		if name, _, ok := strings.Cut(line, " "); ok && !strings.HasPrefix(line, "#") {
			name, _, _ = strings.Cut(name, "{")
			exported[name] = true
		}
	}

	exprs := map[string][]string{} // file -> PromQL expressions
	dash, err := os.ReadFile("../../docs/ops/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dj struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(dash, &dj); err != nil {
		t.Fatalf("grafana-dashboard.json: %v", err)
	}
	for _, p := range dj.Panels {
		for _, tg := range p.Targets {
			exprs["grafana-dashboard.json"] = append(exprs["grafana-dashboard.json"], tg.Expr)
		}
	}
	rules, err := os.ReadFile("../../docs/ops/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	var rj struct {
		Groups []struct {
			Rules []struct{ Alert, Expr string }
		}
	}
	if err := yaml.Unmarshal(rules, &rj); err != nil {
		t.Fatalf("alerts.yml: %v", err)
	}
	for _, g := range rj.Groups {
		for _, r := range g.Rules {
			exprs["alerts.yml"] = append(exprs["alerts.yml"], r.Expr)
		}
	}
	series := regexp.MustCompile(`\b(lift|go|process)_[a-z0-9_]+`)
	for file, list := range exprs {
		if len(list) < 10 {
			t.Errorf("%s: only %d expressions found", file, len(list))
		}
		for _, e := range list {
			for _, name := range series.FindAllString(e, -1) {
				if !exported[name] {
					t.Errorf("%s uses %s, which lift does not export: %s", file, name, e)
				}
			}
		}
	}

	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool not found: scripts/tools promtool installs it")
	}
	for _, args := range [][]string{{"check", "rules", "alerts.yml"}, {"test", "rules", "alerts_test.yml"}} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = "../../docs/ops"
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}
