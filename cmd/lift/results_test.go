package main

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"math"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/liftlab/lift/bandit"
	banditstore "github.com/liftlab/lift/bandit/pgstore"
	"github.com/liftlab/lift/experiments"
	"github.com/liftlab/lift/experiments/pgstore"
	"github.com/liftlab/lift/experiments/stats"
	"github.com/liftlab/lift/internal/testenv"
)

// TestResultsEndToEnd: users decided by /v1/decide (exposures logged) and purchases
// posted through /v1/events, for a known split, produce the expected numbers in the
// results API.
func TestResultsEndToEnd(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.start(t)
	f.server.want(201, "POST", "/api/v1/experiments", `{"key":"checkout","status":"running",
		"variants":[{"key":"control","weight":0.5},{"key":"express","weight":0.5}],
		"goal":{"event":"purchase","kind":"conversion"},
		"metrics":[{"key":"revenue","event":"purchase","kind":"value"}],"analysis":{"sequential":false}}`, nil)

	const users = 400
	assigned := map[string]string{}
	testenv.Eventually(t, 5*time.Second, "checkout to be served by split", func() bool {
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
	testenv.Eventually(t, 30*time.Second, "the results of every user and event", func() bool {
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

// TestResultsSurviveStoredValues: whatever values are stored — rows written before the
// collector bounded values, AMQP publishers, sums of many large values — the results
// API, the bandit report and the experiment pages answer 200 with valid JSON and
// readable pages, and the process keeps serving. A purchase of 3e15 overflowed the
// page's number formatting (a fatal stack overflow that took the whole process down);
// two purchases of 1e308 made sums +Inf, which JSON cannot encode (500 for good).
func TestResultsSurviveStoredValues(t *testing.T) {
	f := newFixture(t)
	const pw = "correct horse battery"
	runCLI(t, f.env, pw+"\n", "users", "create", "--email", "pm@example.com", "--role", "viewer")
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, f.env["LIFT_POSTGRES_URL"])
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	svc := experiments.NewService(pgstore.New(pool))
	for _, doc := range []string{
		`{"key":"whale","status":"running","variants":[{"key":"control"},{"key":"treat"}],"goal":{"event":"purchase","kind":"value"}}`,
		`{"key":"overflow","status":"running","variants":[{"key":"control"},{"key":"treat"}],"goal":{"event":"purchase","kind":"value"},
			"metrics":[{"key":"buyers","event":"purchase","kind":"conversion"}]}`,
		`{"key":"reco","type":"bandit","status":"paused","variants":[{"key":"a"},{"key":"b"}],"goal":{"event":"purchase","kind":"value"}}`,
	} {
		if _, err := svc.Create(ctx, "test", experiments.KindExperiment, []byte(doc)); err != nil {
			t.Fatal(err)
		}
	}
	// The paused bandit keeps these weights; its report reads the purchases below.
	if err := banditstore.New(pool).Publish(ctx, []bandit.Publication{{Experiment: "reco", Variants: []string{"a", "b"},
		Counts: []bandit.Counts{{Exposures: 40, Sum: 800, SumSq: 16000}, {Exposures: 40, Sum: 900, SumSq: 20000}},
		Result: bandit.Result{Weights: []float64{0.5, 0.5}, PBest: []float64{0.4, 0.6},
			Posteriors: []bandit.Summary{{Mean: 20, Low: 15, High: 25}, {Mean: 22, Low: 17, High: 27}}}}}); err != nil {
		t.Fatal(err)
	}
	p := f.start(t)
	ordinary := make([]float64, 40)
	for i := range 10 {
		ordinary[i] = 20
	}
	insertPurchases(t, f.env["LIFT_CLICKHOUSE_ADDR"], f.env["LIFT_CLICKHOUSE_DB"], map[string]map[string][]float64{
		"whale":    {"control": append([]float64{3e15}, ordinary[1:]...), "treat": ordinary},
		"overflow": {"control": ordinary, "treat": append([]float64{1e308, 1e308}, ordinary[2:]...)},
		"reco":     {"a": ordinary, "b": append([]float64{1e308, 1e308}, ordinary[2:]...)},
	})

	for _, key := range []string{"whale", "overflow"} {
		var res struct {
			Users          float64
			Recommendation struct{ Decision, Reason string }
			Metrics        []struct {
				Key      string
				Variants []struct {
					Key    string
					Users  float64
					Sum    *float64
					Value  *float64
					Lift   *float64
					CILow  *float64 `json:"ci_low"`
					PValue *float64 `json:"p_value"`
					Reason string
				}
			}
		}
		var body []byte
		testenv.Eventually(t, 30*time.Second, "valid results", func() bool {
			resp := f.server.do("GET", "/api/v1/experiments/"+key+"/results", "", nil)
			body, _ = io.ReadAll(resp.Body)
			if resp.StatusCode != 200 || !json.Valid(body) {
				t.Fatalf("results of %s: %d %s", key, resp.StatusCode, body)
			}
			return json.Unmarshal(body, &res) == nil && res.Users == 80
		})
		goal := res.Metrics[0]
		switch key {
		case "whale":
			// 3e15 is finite: the analysis goes on as usual.
			if s := goal.Variants[0].Sum; s == nil || *s != 3e15+9*20 || goal.Variants[1].Lift == nil {
				t.Errorf("whale: %s", body)
			}
		case "overflow":
			// The treatment's sum is +Inf: null, and no comparison, with the reason.
			tr := goal.Variants[1]
			if tr.Sum != nil || tr.Value != nil || tr.Lift != nil || tr.CILow != nil || tr.PValue != nil || !strings.Contains(tr.Reason, "overflow") {
				t.Errorf("overflow: treatment %s", body)
			}
			if r := res.Recommendation; r.Decision != "keep_running" || !strings.Contains(r.Reason, "overflow") {
				t.Errorf("overflow: recommendation %+v", r)
			}
			// The conversion metric on the same events is unaffected.
			if buyers := res.Metrics[1].Variants[1]; buyers.Lift == nil || buyers.Reason != "" {
				t.Errorf("overflow: conversions %s", body)
			}
		}
	}
	var rep bandit.Report
	resp := f.server.do("GET", "/api/v1/experiments/reco/bandit", "", nil)
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || json.Unmarshal(body, &rep) != nil || len(rep.Segments) != 1 {
		t.Fatalf("bandit report: %d %s", resp.StatusCode, body)
	}
	// The bandit's results: the overflowing arm has no value, interval or P(best), and
	// says why; then nobody has a P(best).
	var banditRes struct {
		Metrics []struct {
			Variants []struct {
				Value      *float64
				ValueCILow *float64 `json:"value_ci_low"`
				PBest      *float64 `json:"p_best"`
				Reason     string
			}
		}
	}
	testenv.Eventually(t, 30*time.Second, "valid results for reco", func() bool {
		resp = f.server.do("GET", "/api/v1/experiments/reco/results", "", nil)
		body, _ = io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || !json.Valid(body) {
			t.Fatalf("results of reco: %d %s", resp.StatusCode, body)
		}
		return json.Unmarshal(body, &banditRes) == nil && len(banditRes.Metrics) == 1 && banditRes.Metrics[0].Variants[0].Value != nil
	})
	if a, b := banditRes.Metrics[0].Variants[0], banditRes.Metrics[0].Variants[1]; a.ValueCILow == nil || b.Value != nil || b.PBest != nil ||
		a.PBest != nil || !strings.Contains(b.Reason, "overflow") {
		t.Errorf("bandit results: an overflowing arm should be null with a reason: %s", body)
	}

	c := dashboardLogin(t, p.url, "pm@example.com", pw)
	for _, w := range []struct{ key, id, want string }{
		{"whale", "goal-control-count", "3.00e+15"},
		{"overflow", "goal-treat-count", "∞"},
		{"overflow", "goal-treat-lift", "—"},
		{"reco", "pbest-all-b", "—"},
	} {
		// refresh=1: the background refresher may have cached the experiment before
		// the rows above were written.
		page := getPage(t, c, p.url+"/experiments/"+w.key+"?refresh=1")
		m := regexp.MustCompile(`data-testid="` + w.id + `"[^>]*>([^<]*)`).FindStringSubmatch(page)
		if m == nil || strings.TrimSpace(html.UnescapeString(m[1])) != w.want {
			t.Errorf("page of %s: %s = %v, want %q", w.key, w.id, m, w.want)
		}
	}
	// The process is still serving decisions.
	var d decideResp
	f.client.want(200, "POST", "/v1/decide", `{"user_id":"after","keys":["whale"]}`, &d)
	if d.Decisions["whale"].Variant == "" {
		t.Errorf("no decision after the pages: %+v", d)
	}
}

// insertPurchases writes, per experiment and variant, one exposed user per value an
// hour ago, and a purchase of that value a minute later where it is not zero: rows as
// the store holds them whatever the collector accepts today.
func insertPurchases(t *testing.T, addr, db string, data map[string]map[string][]float64) {
	t.Helper()
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{addr}, Auth: clickhouse.Auth{Database: db, Username: "default"}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx := context.Background()
	exps, err := conn.PrepareBatch(ctx, "INSERT INTO exposures (event_id, ts, user_id, experiment, variant, segment, assignment_probability)")
	if err != nil {
		t.Fatal(err)
	}
	evs, err := conn.PrepareBatch(ctx, "INSERT INTO events (event_id, type, user_id, ts, received_at, value, properties)")
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now().UTC().Add(-time.Hour)
	for experiment, variants := range data {
		for variant, values := range variants {
			for i, v := range values {
				user := fmt.Sprintf("%s-%s-%d", experiment, variant, i)
				if err := exps.Append(uuid.New(), at, user, experiment, variant, "", 0.5); err != nil {
					t.Fatal(err)
				}
				if v != 0 {
					if err := evs.Append(uuid.New(), "purchase", user, at.Add(time.Minute), at.Add(time.Minute), v, "{}"); err != nil {
						t.Fatal(err)
					}
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

// TestResultsDegenerate: the results API on real services answers the issue's
// degenerate cases without interval, p-value or verdict, with the reason — one user
// per variant, a revenue that does not vary, values around 1e12 whose spread
// ClickHouse's sum of squares loses — and keeps the sign of a lift over a negative
// control mean (net refunds −0.5 → −0.2 per user is +60%).
func TestResultsDegenerate(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.start(t)
	const noMinimum = `"analysis":{"min_users":0,"min_runtime":"0s","sequential":false}`
	for _, doc := range []string{
		`{"key":"one-each","status":"running","variants":[{"key":"control"},{"key":"treat"}],"goal":{"event":"purchase","kind":"conversion"},` + noMinimum + `}`,
		`{"key":"flat","status":"running","variants":[{"key":"control"},{"key":"treat"}],"goal":{"event":"purchase","kind":"value"},` + noMinimum + `}`,
		`{"key":"huge","status":"running","variants":[{"key":"control"},{"key":"treat"}],"goal":{"event":"purchase","kind":"value"},` + noMinimum + `}`,
		`{"key":"refunds","status":"running","variants":[{"key":"control"},{"key":"treat"}],"goal":{"event":"purchase","kind":"value"},` + noMinimum + `}`,
	} {
		f.server.want(201, "POST", "/api/v1/experiments", doc, nil)
	}
	values := func(n int, vs ...float64) []float64 {
		out := make([]float64, n)
		for i := range out {
			out[i] = vs[i%len(vs)]
		}
		return out
	}
	insertPurchases(t, f.env["LIFT_CLICKHOUSE_ADDR"], f.env["LIFT_CLICKHOUSE_DB"], map[string]map[string][]float64{
		"one-each": {"control": {20}, "treat": {0}},
		"flat":     {"control": values(1000, 10), "treat": values(1000, 11)},
		"huge":     {"control": values(1000, 1e12, 1e12+1, 1e12+2, 1e12+3), "treat": values(1000, 1e12+1, 1e12+2, 1e12+3, 1e12+4)},
		"refunds":  {"control": values(1000, -2.5, 1.5), "treat": values(1000, -2.2, 1.8)},
	})
	type variant struct {
		Key                 string
		Users               float64
		Lift, CILow, PValue *float64
		Chance              *float64 `json:"chance_to_beat_control"`
		Reason              string
	}
	for key, want := range map[string]struct {
		users  float64
		reason string
	}{"one-each": {2, "fewer than 2 users"}, "flat": {2000, "does not vary"}, "huge": {2000, "lost to rounding"}, "refunds": {2000, ""}} {
		t.Run(key, func(t *testing.T) {
			var res struct {
				Users          float64
				Metrics        []struct{ Variants []variant }
				Recommendation struct{ Decision, Reason string }
			}
			testenv.Eventually(t, 30*time.Second, "results counting every user", func() bool {
				f.server.want(200, "GET", "/api/v1/experiments/"+key+"/results", "", &res)
				return res.Users == want.users
			})
			v := res.Metrics[0].Variants[1]
			if want.reason == "" {
				if v.Lift == nil || math.Abs(*v.Lift-0.6) > 1e-9 || v.Chance == nil || *v.Chance < 0.99 || v.Reason != "" {
					t.Errorf("net refunds: %+v", v)
				}
				return
			}
			if v.Lift != nil || v.CILow != nil || v.PValue != nil || v.Chance != nil || !strings.Contains(v.Reason, want.reason) {
				t.Errorf("treatment %+v, want no comparison and a reason with %q", v, want.reason)
			}
			if r := res.Recommendation; r.Decision != "keep_running" || !strings.Contains(r.Reason, want.reason) {
				t.Errorf("recommendation %+v", r)
			}
		})
	}
}
