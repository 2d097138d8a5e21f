package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/liftlab/lift/internal/retailsim"
	"github.com/liftlab/lift/internal/testenv"
)

// TestSimulateRecommenderVsPopular runs `lift simulate` with recommendations on the
// real services: shoppers with hidden tastes browse (a warm-up the recommender is
// trained on), then the experiment recs-vs-popular shows each visitor four products,
// chosen by the recommender or by popularity; the more the products shown appeal to
// the visitor, the more likely a purchase. The simulation knows the true effect (it
// asks lift what each arm would have shown every visitor); lift's measured lift must
// put it inside its 95% CI, and the recommender must win.
//
// The scenario waits 3 s (not the default 1 s) between a visitor's views and the
// request for recommendations: with the whole suite loading the machine, the recent
// items can take longer than a second to reach the decision process, and a visitor
// scored without them sees popular items in both arms (a run under load measured a
// true lift of only +7.5% so).
func TestSimulateRecommenderVsPopular(t *testing.T) {
	if testing.Short() {
		t.Skip("drives 2,500 simulated visitors through the real pipeline")
	}
	f := newFixture(t)
	p := f.start(t)
	f.server.want(201, "POST", "/api/v1/recommenders", `{"key":"similar","event_types":["product_view","add_to_cart","purchase"],
		"item_property":"sku","retrain_every":"1h"}`, nil)
	f.server.want(201, "POST", "/api/v1/experiments", `{"key":"recs-vs-popular","status":"running",
		"variants":[{"key":"popular","weight":0.5,"value":{"strategy":"popular"}},{"key":"similar","weight":0.5,"value":{"strategy":"similar"}}],
		"goal":{"event":"purchase","kind":"conversion"}}`, nil)
	testenv.Eventually(t, 10*time.Second, "the recs experiment to be served", func() bool {
		return f.client.do("POST", "/v1/recommend", `{"user_id":"probe","recommender":"similar","experiment":"recs-vs-popular","track":false}`, nil).StatusCode == 200
	})

	out := filepath.Join(t.TempDir(), "report.json")
	start := time.Now()
	text := runCLI(t, f.env, "", "simulate", "--url", p.url, "--key", f.client.key, "--server-key", f.server.key,
		"--scenario", "testdata/simulate-recs.json", "--warmup", "1500", "--rate", "60", "--sessions", "1000", "--seed", "11",
		"--prefix", "recs-", "--json", out)
	t.Logf("report (%v):\n%s", time.Since(start).Round(time.Second), text)
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var rep retailsim.Report
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Sessions != 1000 || !rep.Settled || len(rep.Experiments) != 1 || len(rep.Experiments[0].Variants) != 2 {
		t.Fatalf("report: %d sessions, settled %v, experiments %+v", rep.Sessions, rep.Settled, rep.Experiments)
	}
	for _, v := range rep.Experiments[0].Variants {
		if float64(v.SimulatedUsers) != v.MeasuredUsers || float64(v.SimulatedBuyers) != v.MeasuredBuyers {
			t.Errorf("%s: simulated %d users %d buyers, lift counted %v %v", v.Key, v.SimulatedUsers, v.SimulatedBuyers, v.MeasuredUsers, v.MeasuredBuyers)
		}
	}
	similar := rep.Experiments[0].Variants[1]
	if similar.Key != "similar" || similar.TrueLift == nil || *similar.TrueLift < 0.1 {
		t.Fatalf("true lift of the recommender %v (variant %s), want a clear effect to measure", deref(similar.TrueLift), similar.Key)
	}
	if similar.TrueLiftWithinCI == nil || !*similar.TrueLiftWithinCI {
		t.Errorf("true lift %v outside the measured CI [%v, %v]", deref(similar.TrueLift), deref(similar.CILow), deref(similar.CIHigh))
	}
	if similar.CILow == nil || *similar.CILow <= 0 {
		t.Errorf("the recommender does not win: measured lift %v, CI [%v, %v]", deref(similar.Lift), deref(similar.CILow), deref(similar.CIHigh))
	}
}
