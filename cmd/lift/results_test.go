package main

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/liftlab/lift/experiments/stats"
)

// TestResultsEndToEnd: users decided by /v1/decide (exposures logged) and purchases
// posted through /v1/events, for a known split, produce the expected numbers in the
// results API.
func TestResultsEndToEnd(t *testing.T) {
	f := newFixture(t)
	f.start(t)
	f.server.want(201, "POST", "/api/v1/experiments", `{"key":"checkout","status":"running",
		"variants":[{"key":"control","weight":0.5},{"key":"express","weight":0.5}],
		"goal":{"event":"purchase","kind":"conversion"},
		"metrics":[{"key":"revenue","event":"purchase","kind":"value"}]}`, nil)

	const users = 400
	assigned := map[string]string{}
	eventually(t, 5*time.Second, func() bool {
		var r decideResp
		f.client.want(200, "POST", "/v1/decide", `{"user_id":"user-0","keys":["checkout"]}`, &r)
		return r.Decisions["checkout"].Reason == "split"
	})
	want := map[string]*struct{ users, conversions, revenue float64 }{"control": {}, "express": {}}
	var events []string
	for i := range users {
		id := fmt.Sprintf("user-%d", i)
		var r decideResp
		f.client.want(200, "POST", "/v1/decide", `{"user_id":"`+id+`","keys":["checkout"]}`, &r)
		v := r.Decisions["checkout"].Variant
		assigned[id] = v
		w := want[v]
		w.users++
		// Known truth: 10% of control users buy, 20% of express users.
		rate := 1
		if v == "express" {
			rate = 2
		}
		if i%10 < rate {
			w.conversions++
			w.revenue += 25
			events = append(events, fmt.Sprintf(`{"type":"purchase","user_id":%q,"value":25}`, id))
		}
	}
	// Let the exposures land first: purchases count only after a user's first exposure.
	time.Sleep(1500 * time.Millisecond)
	var accepted struct{ Accepted int }
	f.client.want(202, "POST", "/v1/events", `{"events":[`+strings.Join(events, ",")+`]}`, &accepted)
	if accepted.Accepted != len(events) {
		t.Fatalf("accepted %d of %d events", accepted.Accepted, len(events))
	}

	type variant struct {
		Key                 string
		Users               float64
		Conversions, Sum    *float64
		PValue              *float64 `json:"p_value"`
		Lift                *float64 `json:"lift"`
		ChanceToBeatControl *float64 `json:"chance_to_beat_control"`
	}
	var res struct {
		Users   float64
		SRM     bool
		Metrics []struct {
			Key      string
			CUPED    bool
			Variants []variant
		}
		Recommendation struct{ Decision, Reason string }
	}
	eventually(t, 30*time.Second, func() bool {
		f.server.want(200, "GET", "/api/v1/experiments/checkout/results", "", &res)
		return res.Users == users && len(res.Metrics) == 2 && res.Metrics[0].Variants[1].Conversions != nil &&
			*res.Metrics[0].Variants[0].Conversions+*res.Metrics[0].Variants[1].Conversions == float64(len(events))
	})
	expected, err := stats.AnalyzeBinomial(stats.BinomialInput{Weights: []float64{0.5, 0.5}, Variants: []stats.VariantCounts{
		{Key: "control", Users: want["control"].users, Conversions: want["control"].conversions},
		{Key: "express", Users: want["express"].users, Conversions: want["express"].conversions}}}, stats.DefaultOptions)
	if err != nil {
		t.Fatal(err)
	}
	goal, revenue := res.Metrics[0], res.Metrics[1]
	if goal.CUPED {
		t.Error("CUPED applied without any pre-exposure data")
	}
	for i, v := range goal.Variants {
		e := expected.Variants[i]
		if v.Key != e.Key || v.Users != e.Users || *v.Conversions != *e.Conversions {
			t.Errorf("goal %s: %v users %v conversions, want %v %v", v.Key, v.Users, *v.Conversions, e.Users, *e.Conversions)
		}
		if i > 0 && (math.Abs(*v.Lift-*e.Lift) > 1e-9 || math.Abs(*v.PValue-*e.PValue) > 1e-9 ||
			math.Abs(*v.ChanceToBeatControl-*e.ChanceToBeatControl) > 1e-9) {
			t.Errorf("goal %s: lift %v p %v, want %v %v", v.Key, *v.Lift, *v.PValue, *e.Lift, *e.PValue)
		}
	}
	for _, v := range revenue.Variants {
		if *v.Sum != want[v.Key].revenue {
			t.Errorf("revenue %s: %v, want %v", v.Key, *v.Sum, want[v.Key].revenue)
		}
	}
	e := expected.Variants[1]
	t.Logf("users %v: lift %.3f [%.3f, %.3f], p %.4f; recommendation %+v", res.Users, *e.Lift, *e.CILow, *e.CIHigh, *e.PValue, res.Recommendation)
}
