package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/liftlab/lift/internal/retailsim"
	"github.com/liftlab/lift/internal/testenv"
)

// TestSimulate runs `lift simulate` against a real lift on the real services: 3,000
// visitors of testdata/simulate-scenario.json, whose "bold" hero banner truly lifts
// purchases by 30% on desktop and 43% on mobile, and whose recommendation
// bandit has a different best block for new and returning visitors. The report must
// count every simulated user and purchase, put the true lift inside lift's 95% CI, and
// find each segment's true best arm.
func TestSimulate(t *testing.T) {
	if testing.Short() {
		t.Skip("drives 3,000 simulated visitors through the real pipeline")
	}
	f := newFixture(t)
	p := f.start(t)
	f.server.want(201, "POST", "/api/v1/experiments", `{"key":"hero","status":"running",
		"variants":[{"key":"control","weight":0.5},{"key":"bold","weight":0.5}],"goal":{"event":"purchase","kind":"conversion"}}`, nil)
	f.server.want(201, "POST", "/api/v1/segments", `{"key":"new","kind":"attribute","condition":{"returning":false}}`, nil)
	f.server.want(201, "POST", "/api/v1/segments", `{"key":"returning","kind":"attribute","condition":{"returning":true}}`, nil)
	f.server.want(201, "POST", "/api/v1/experiments", `{"key":"reco","type":"bandit","status":"running",
		"variants":[{"key":"trending"},{"key":"similar"},{"key":"bestsellers"}],"goal":{"event":"click","kind":"conversion"},
		"bandit":{"update_every":"2s","per_segment":["new","returning"]}}`, nil)
	testenv.Eventually(t, 5*time.Second, "hero and reco to be served", func() bool {
		var r decideResp
		f.client.want(200, "POST", "/v1/decide", `{"user_id":"probe","track":false}`, &r)
		return r.Decisions["hero"].Reason == "split" && r.Decisions["reco"].Reason == "bandit"
	})

	out := filepath.Join(t.TempDir(), "report.json")
	text := runCLI(t, f.env, "", "simulate", "--url", p.url, "--key", f.client.key, "--server-key", f.server.key,
		"--scenario", "testdata/simulate-scenario.json", "--rate", "100", "--sessions", "3000", "--seed", "7",
		"--prefix", "simtest-", "--json", out, "--bandit-wait", "5s")
	t.Logf("report:\n%s", text)
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var rep retailsim.Report
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Sessions != 3000 || !rep.Settled {
		t.Fatalf("%d sessions, settled %v", rep.Sessions, rep.Settled)
	}
	if len(rep.Experiments) != 1 || len(rep.Experiments[0].Variants) != 2 {
		t.Fatalf("experiments in the report: %+v", rep.Experiments)
	}
	for _, v := range rep.Experiments[0].Variants {
		if float64(v.SimulatedUsers) != v.MeasuredUsers || float64(v.SimulatedBuyers) != v.MeasuredBuyers {
			t.Errorf("hero %s: simulated %d users %d buyers, lift counted %v %v", v.Key, v.SimulatedUsers, v.SimulatedBuyers, v.MeasuredUsers, v.MeasuredBuyers)
		}
	}
	bold := rep.Experiments[0].Variants[1]
	if bold.TrueLift == nil || *bold.TrueLift < 0.30 || *bold.TrueLift > 0.43 {
		t.Errorf("true lift %v, want between +30%% (desktop) and +43%% (mobile: 1.3 × 1.1)", deref(bold.TrueLift))
	}
	if bold.TrueLiftWithinCI == nil || !*bold.TrueLiftWithinCI {
		t.Errorf("true lift %v outside the measured CI [%v, %v]", deref(bold.TrueLift), deref(bold.CILow), deref(bold.CIHigh))
	}
	want := map[string]string{"new": "trending", "returning": "similar"}
	if len(rep.Bandits) != 1 {
		t.Fatalf("bandits in the report: %+v", rep.Bandits)
	}
	seen := 0
	for _, s := range rep.Bandits[0].Segments {
		if w, ok := want[s.Segment]; ok {
			seen++
			if s.TrueBest != w || !s.Match {
				t.Errorf("reco, %s: true best %s, lift's best %s (P(best) %v)", s.Segment, s.TrueBest, s.MeasuredBest, s.PBest)
			}
		}
	}
	if seen != 2 {
		t.Errorf("report has %d of the 2 bandit segments: %+v", seen, rep.Bandits[0].Segments)
	}
	if !strings.Contains(text, "truth in CI") {
		t.Errorf("text report lacks the comparison table:\n%s", text)
	}
}
