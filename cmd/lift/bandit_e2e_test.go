package main

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/liftlab/lift/internal/testenv"
)

// TestBanditEndToEnd runs bandits on the real services in one lift process (role all:
// decide, exposure log, collector, consumers, ClickHouse, the updater every 2 s):
// simulated users with known conversion rates are decided by /v1/decide, and their
// conversions posted to /v1/events.
//   - "reco": 4 arms converting at 4%, 5%, 6% and 4.5%; after 20,000 users the 6% arm
//     gets ≥ 70% of the last 5,000 decisions.
//   - "banner": per-segment bandit whose best arm is "a" on mobile and "b" on desktop;
//     each segment converges to its own best arm.
func TestBanditEndToEnd(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("drives 20,000 users through the real pipeline")
	}
	f := newFixture(t)
	f.start(t)
	f.server.want(201, "POST", "/api/v1/experiments", `{"key":"reco","type":"bandit","status":"running",
		"variants":[{"key":"a"},{"key":"b"},{"key":"c"},{"key":"d"}],
		"goal":{"event":"purchase","kind":"conversion"},"bandit":{"update_every":"2s"}}`, nil)
	f.server.want(201, "POST", "/api/v1/segments", `{"key":"mobile","kind":"attribute","condition":{"device":"mobile"}}`, nil)
	f.server.want(201, "POST", "/api/v1/segments", `{"key":"desktop","kind":"attribute","condition":{"device":"desktop"}}`, nil)
	f.server.want(201, "POST", "/api/v1/experiments", `{"key":"banner","type":"bandit","status":"running",
		"variants":[{"key":"a"},{"key":"b"}],
		"goal":{"event":"add_to_cart","kind":"conversion"},"bandit":{"update_every":"2s","per_segment":["mobile","desktop"]}}`, nil)
	f.server.want(201, "POST", "/api/v1/experiments", `{"key":"promo","type":"bandit","status":"running",
		"variants":[{"key":"a"},{"key":"b"}],
		"goal":{"event":"click","kind":"conversion"},"bandit":{"update_every":"2s","auto_stop":true},
		"analysis":{"min_users":200,"min_runtime":"0s"}}`, nil)
	testenv.Eventually(t, 5*time.Second, "the three bandits to be served", func() bool {
		var r decideResp
		f.client.want(200, "POST", "/v1/decide", `{"user_id":"probe","track":false}`, &r)
		return r.Decisions["reco"].Reason == "bandit" && r.Decisions["banner"].Reason == "bandit" && r.Decisions["promo"].Reason == "bandit"
	})

	recoRates := map[string]float64{"a": 0.04, "b": 0.05, "c": 0.06, "d": 0.045}
	bannerRates := map[string]map[string]float64{
		"mobile":  {"a": 0.08, "b": 0.03},
		"desktop": {"a": 0.03, "b": 0.08},
	}
	const users, round = 20_000, 1_000
	rng := rand.New(rand.NewPCG(42, 7))
	promoRates := map[string]float64{"a": 0.02, "b": 0.10}
	type decided struct{ reco, banner, promo, device string }
	var last []decided
	for start := 0; start < users; start += round {
		out := make([]decided, round)
		var wg sync.WaitGroup
		for w := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; i < round; i += 8 {
					device := []string{"mobile", "desktop"}[(start+i)%2]
					var r decideResp
					f.client.want(200, "POST", "/v1/decide",
						fmt.Sprintf(`{"user_id":"user-%d","attributes":{"device":%q}}`, start+i, device), &r)
					out[i] = decided{r.Decisions["reco"].Variant, r.Decisions["banner"].Variant, r.Decisions["promo"].Variant, device}
				}
			}()
		}
		wg.Wait()
		var events []string
		for i, d := range out {
			id := fmt.Sprintf("user-%d", start+i)
			if rng.Float64() < recoRates[d.reco] {
				events = append(events, fmt.Sprintf(`{"type":"purchase","user_id":%q,"value":20}`, id))
			}
			if rng.Float64() < bannerRates[d.device][d.banner] {
				events = append(events, fmt.Sprintf(`{"type":"add_to_cart","user_id":%q}`, id))
			}
			if rng.Float64() < promoRates[d.promo] {
				events = append(events, fmt.Sprintf(`{"type":"click","user_id":%q}`, id))
			}
		}
		// Conversions follow right away: attribution goes by the events' timestamps, so
		// they count whichever of them or the exposures reaches ClickHouse first.
		for len(events) > 0 {
			n := min(500, len(events))
			var got struct{ Accepted int }
			f.client.want(202, "POST", "/v1/events", `{"events":[`+strings.Join(events[:n], ",")+`]}`, &got)
			if got.Accepted != n {
				t.Fatalf("collector accepted %d of %d events", got.Accepted, n)
			}
			events = events[n:]
		}
		// About one update (every 2 s) per round, as traffic keeps flowing.
		time.Sleep(2 * time.Second)
		if start+round > users-5_000 {
			last = append(last, out...)
		}
		if (start+round)%5000 == 0 {
			t.Logf("users %d–%d: %s", start+round-999, start+round, share(out, func(d decided) string { return d.reco }))
		}
	}

	if s := fraction(last, func(d decided) bool { return d.reco == "c" }); s < 0.70 {
		t.Errorf("the 6%% arm got %.1f%% of the last 5,000 decisions, want ≥ 70%%", 100*s)
	} else {
		t.Logf("the 6%% arm got %.1f%% of the last 5,000 decisions", 100*s)
	}
	// The report: the allocation's P(best), posteriors, regret, history.
	var rep struct {
		Winner   string
		Segments []struct {
			Segment string
			History []struct{ Weights []float64 }
			Regret  float64 `json:"estimated_regret"`
			Arms    []struct {
				Variant   string
				PBest     float64 `json:"p_best"`
				NaiveMean float64 `json:"naive_mean"`
			}
		}
	}
	f.server.want(200, "GET", "/api/v1/experiments/reco/bandit", "", &rep)
	if len(rep.Segments) != 1 || len(rep.Segments[0].Arms) != 4 || len(rep.Segments[0].History) < 5 || rep.Segments[0].Regret <= 0 {
		t.Fatalf("reco report: %+v", rep)
	}
	c := rep.Segments[0].Arms[2]
	for _, a := range rep.Segments[0].Arms {
		if a.PBest > c.PBest {
			t.Errorf("reco arm %s has a higher P(best) (%.3f) than the 6%% arm (%.3f)", a.Variant, a.PBest, c.PBest)
		}
	}
	// The results: the arms weighted over the bandit's periods; the 6% arm is the
	// likeliest best, and there is no SRM check or control.
	var res struct {
		Type      string
		SRMPValue *float64 `json:"srm_p_value"`
		Control   string
		Metrics   []struct {
			Variants []struct {
				Key        string
				Value      float64
				ValueCILow *float64 `json:"value_ci_low"`
				PBest      *float64 `json:"p_best"`
				NaiveValue *float64 `json:"naive_value"`
			}
		}
	}
	f.server.want(200, "GET", "/api/v1/experiments/reco/results", "", &res)
	if res.Type != "bandit" || res.SRMPValue != nil || res.Control != "" || len(res.Metrics) == 0 || len(res.Metrics[0].Variants) != 4 {
		t.Fatalf("reco results: %+v", res)
	}
	arms := res.Metrics[0].Variants
	for _, a := range arms {
		if a.PBest == nil || a.ValueCILow == nil {
			t.Fatalf("reco %s: no P(best) or interval: %+v", a.Key, a)
		}
		if *a.PBest > *arms[2].PBest {
			t.Errorf("reco arm %s has a higher P(best) (%.3f) than the 6%% arm (%.3f) in the results", a.Key, *a.PBest, *arms[2].PBest)
		}
		t.Logf("reco %s: weighted %.4f (from %.4f), P(best) %.3f", a.Key, a.Value, *a.ValueCILow, *a.PBest)
	}
	// promo declared its winner by itself and now serves it to everyone.
	var promo struct{ Bandit struct{ Winner string } }
	f.server.want(200, "GET", "/api/v1/experiments/promo", "", &promo)
	if promo.Bandit.Winner != "b" {
		t.Errorf("promo winner %q, want b", promo.Bandit.Winner)
	}
	for i := range 50 {
		var r decideResp
		f.client.want(200, "POST", "/v1/decide", fmt.Sprintf(`{"user_id":"late-%d","keys":["promo"],"track":false}`, i), &r)
		if r.Decisions["promo"].Variant != "b" {
			t.Fatalf("after the winner was declared, a user got %q", r.Decisions["promo"].Variant)
		}
	}
	var audit struct {
		Items []struct{ Actor, Action string }
	}
	f.server.want(200, "GET", "/api/v1/audit?entity=experiment&key=promo", "", &audit)
	if len(audit.Items) == 0 || audit.Items[0].Action != "declare-winner" || !strings.HasPrefix(audit.Items[0].Actor, "bandit-updater") {
		t.Errorf("audit of promo: %+v", audit.Items)
	}

	for device, best := range map[string]string{"mobile": "a", "desktop": "b"} {
		var seg []decided
		for _, d := range last {
			if d.device == device {
				seg = append(seg, d)
			}
		}
		s := fraction(seg, func(d decided) bool { return d.banner == best })
		t.Logf("banner, %s: best arm %q got %.1f%% of the last decisions", device, best, 100*s)
		if s < 0.70 {
			t.Errorf("banner, %s: best arm %q got %.1f%%, want ≥ 70%%", device, best, 100*s)
		}
	}
}

func fraction[T any](xs []T, pred func(T) bool) float64 {
	n := 0
	for _, x := range xs {
		if pred(x) {
			n++
		}
	}
	return float64(n) / float64(len(xs))
}

func share[T any](xs []T, key func(T) string) string {
	counts := map[string]int{}
	for _, x := range xs {
		counts[key(x)]++
	}
	var parts []string
	for _, k := range []string{"a", "b", "c", "d"} {
		parts = append(parts, fmt.Sprintf("%s %.0f%%", k, 100*float64(counts[k])/float64(len(xs))))
	}
	return strings.Join(parts, ", ")
}

func deref(p *float64) any {
	if p == nil {
		return nil
	}
	return *p
}
