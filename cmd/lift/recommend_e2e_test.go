package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/liftlab/lift/internal/testenv"
	"github.com/liftlab/lift/migrations"
)

type recommendedItem struct {
	Item   string  `json:"item"`
	Score  float64 `json:"score"`
	Source string  `json:"source"`
}

type recommendAnswer struct {
	Recommender      string            `json:"recommender"`
	Items            []recommendedItem `json:"items"`
	ModelVersion     int64             `json:"model_version"`
	Strategy         string            `json:"strategy"`
	RecommendationID string            `json:"recommendation_id"`
	Experiment       string            `json:"experiment"`
	Variant          string            `json:"variant"`
}

func (a recommendAnswer) first() string {
	if len(a.Items) == 0 {
		return ""
	}
	return a.Items[0].Item
}

// TestRecommendationsFollowViewsEndToEnd, on the real services: a recommender is
// trained from the events the collector accepted (through ClickHouse, on request),
// every decision process loads its model, and a user's next view changes their
// recommendations within a second (the view reaches the segment engine, which
// publishes the user's recent items); experiments choose the strategy; lift.js's
// recommend() does the same in a browser; what was shown is stored as
// $recommendation events.
func TestRecommendationsFollowViewsEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("drives the real pipeline")
	}
	f := newFixture(t)
	f.env["LIFT_SEGMENT_REBUILD_DELAY"] = "1s"
	f.start(t)
	f.server.want(201, "POST", "/api/v1/recommenders", `{"key":"similar","event_types":["product_view","add_to_cart","purchase"],
		"item_property":"sku","retrain_every":"1h"}`, nil)
	f.server.want(422, "POST", "/api/v1/recommenders", `{"key":"bad","event_types":[],"item_property":"sku"}`, nil)
	pool, err := pgxpool.New(context.Background(), f.env["LIFT_POSTGRES_URL"])
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	waitEngineRuns(t, pool, 4, "features.recommender:similar")

	send := func(events ...string) {
		t.Helper()
		f.client.want(202, "POST", "/v1/events", `{"events":[`+strings.Join(events, ",")+`]}`, nil)
	}
	event := func(typ, user, sku string) string {
		return fmt.Sprintf(`{"type":%q,"user_id":%q,"properties":{"sku":%q}}`, typ, user, sku)
	}
	// What goes together: lamps and shades, mugs and saucers; a third of the shoppers
	// also view the bag, whatever else they view.
	var history []string
	for u := range 30 {
		user := fmt.Sprintf("shopper-%d", u)
		pair := [2]string{"lamp", "shade"}
		if u%2 == 1 {
			pair = [2]string{"mug", "saucer"}
		}
		history = append(history, event("product_view", user, pair[0]), event("product_view", user, pair[1]))
		if u%3 == 0 {
			history = append(history, event("product_view", user, "bag"), event("purchase", user, pair[1]))
		}
	}
	send(history...)

	recommend := func(user, extra string) recommendAnswer {
		var a recommendAnswer
		f.client.want(200, "POST", "/v1/recommend", `{"user_id":"`+user+`","recommender":"similar","n":3`+extra+`}`, &a)
		return a
	}
	if a := recommend("nobody", ""); a.ModelVersion != 0 && len(a.Items) == 0 {
		t.Fatalf("before training: %+v", a)
	}
	f.client.want(404, "POST", "/v1/recommend", `{"user_id":"u","recommender":"nope"}`, nil)
	f.client.want(400, "POST", "/v1/recommend", `{"user_id":"u","recommender":"similar","n":1000}`, nil)

	// Train on request until the model has seen the history (the ingest consumers
	// store events within a second or so).
	testenv.Eventually(t, 60*time.Second, "a model trained on the history", func() bool {
		var models struct {
			Items []struct {
				Version int64
				Stats   struct{ Users int }
			}
		}
		f.server.want(200, "GET", "/api/v1/recommenders/similar/models", "", &models)
		if len(models.Items) > 0 && models.Items[0].Stats.Users == 30 {
			return true
		}
		f.server.want(202, "POST", "/api/v1/recommenders/similar/train", "", nil)
		time.Sleep(time.Second)
		return false
	})
	testenv.Eventually(t, 10*time.Second, "the decision process to load the model", func() bool { return recommend("probe", "").ModelVersion > 0 })
	// A new visitor gets the popular items.
	if a := recommend("new-visitor", ""); len(a.Items) != 3 || a.Items[0].Source != "popular" {
		t.Errorf("new visitor: %+v", a)
	}

	// Real time: each user views a lamp, then a mug; after each view, how long until
	// /v1/recommend answers from it.
	const users = 20
	var mu sync.Mutex
	var latencies []time.Duration
	var wg sync.WaitGroup
	for w := range users {
		wg.Go(func() {
			user := fmt.Sprintf("visitor-%d", w)
			for _, step := range [][2]string{{"lamp", "shade"}, {"mug", "saucer"}} {
				send(event("product_view", user, step[0]))
				accepted := time.Now()
				for recommend(user, "").first() != step[1] {
					if time.Since(accepted) > 10*time.Second {
						t.Errorf("%s viewed %s: recommendations %+v after 10 s", user, step[0], recommend(user, ""))
						return
					}
					time.Sleep(5 * time.Millisecond)
				}
				mu.Lock()
				latencies = append(latencies, time.Since(accepted))
				mu.Unlock()
			}
			// Both recent items count, the newest most; neither is recommended.
			got := recommend(user, "")
			if got.first() != "saucer" || slices.ContainsFunc(got.Items, func(it recommendedItem) bool {
				return it.Item == "lamp" || it.Item == "mug"
			}) {
				t.Errorf("%s after lamp and mug: %+v", user, got)
			}
		})
	}
	wg.Wait()
	if len(latencies) == 0 {
		t.Fatal("no measurement")
	}
	slices.Sort(latencies)
	p50, p99 := latencies[len(latencies)/2], latencies[len(latencies)*99/100]
	t.Logf("a view accepted → /v1/recommend answers from it: p50 %v, p99 %v, max %v over %d views",
		p50, p99, latencies[len(latencies)-1], len(latencies))
	// The figure is logged, not asserted: a wall-clock limit fails on a busy machine
	// whatever lift does. Each view must still be followed (10 s above).

	// An experiment chooses the strategy; its exposure is logged.
	f.server.want(201, "POST", "/api/v1/experiments", `{"key":"recs","type":"ab","variants":[
		{"key":"popular","weight":0.5,"value":{"strategy":"popular"}},{"key":"cf","weight":0.5,"value":{"strategy":"similar"}}]}`, nil)
	f.server.want(200, "POST", "/api/v1/experiments/recs/start", "", nil)
	testenv.Eventually(t, 10*time.Second, "the recs experiment to be served", func() bool { // the decision processes know it
		return f.client.do("POST", "/v1/recommend", `{"user_id":"u","recommender":"similar","experiment":"recs"}`, nil).StatusCode == 200
	})
	seen := map[string]bool{}
	testenv.Eventually(t, 10*time.Second, "both variants' recommendations", func() bool {
		for u := range 20 {
			var a recommendAnswer
			f.client.want(200, "POST", "/v1/recommend", fmt.Sprintf(`{"user_id":"visitor-%d","recommender":"similar","experiment":"recs","n":3}`, u), &a)
			if a.Experiment != "recs" || (a.Variant == "cf") != (a.Strategy == "similar") || a.Recommender != "similar" {
				t.Fatalf("experiment arm: %+v", a)
			}
			if a.Variant == "cf" && (a.first() != "saucer" || a.Items[0].Source != "similar") ||
				a.Variant == "popular" && slices.ContainsFunc(a.Items, func(it recommendedItem) bool {
					return it.Source != "popular"
				}) {
				t.Errorf("arm %s recommends %+v", a.Variant, a.Items)
			}
			seen[a.Variant] = true
		}
		return len(seen) == 2
	})

	// lift.js on a shop's page (another origin): a view, then recommend() follows it;
	// shown() logs the impression.
	shop := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><html><body><script type="module">
			const { init } = await import(%q);
			window.lift = init({endpoint: %q, clientKey: %q, consent: {analytics: true, personalization: true}, flushInterval: 60000});
			window.ready = true;
			</script></body></html>`, f.client.base+"/static/lift.js", f.client.base, f.client.key)
	}))
	defer shop.Close()
	browser := newBrowser(t)
	tab, cancelTab := chromedp.NewContext(browser)
	defer cancelTab()
	run1(t, tab, "open the shop", chromedp.Navigate(strings.Replace(shop.URL, "127.0.0.1", "localhost", 1)),
		chromedp.Poll[chromedp.Void]("window.ready === true", chromedp.WithPollingTimeout(20*time.Second)))
	js := `(async () => {
		lift.track("product_view", {properties: {sku: "mug"}});
		await lift.flush();
		for (let i = 0; i < 100; i++) {
			const r = await lift.recommend("similar", {n: 2});
			if (r.items.length && r.items[0].item === "saucer") { r.shown(); await lift.flush(); return lift.id + " " + r.items.map(x => x.item).join(","); }
			await new Promise(ok => setTimeout(ok, 100));
		}
		return "never";
	})()`
	browserUser, browserItems, _ := strings.Cut(get(t, tab, js, chromedp.Evaluate[string](js, chromedp.EvalAwaitPromise)), " ")
	if !strings.HasPrefix(browserItems, "saucer") {
		t.Fatalf("lift.recommend after a view of a mug: %q", browserItems)
	}

	// What was shown is stored, for attribution.
	q := migrations.OpenClickHouse(f.env["LIFT_CLICKHOUSE_ADDR"], f.env["LIFT_CLICKHOUSE_DB"])
	defer q.Close()
	testenv.Eventually(t, 30*time.Second, "the recommendation events in ClickHouse", func() bool {
		var n, exposed, browserShown uint64
		_ = q.QueryRowContext(context.Background(), `SELECT count() FROM events WHERE type = '$recommendation'
			AND user_id = 'visitor-0' AND visitParamExtractString(properties, 'recommender') = 'similar'`).Scan(&n)
		_ = q.QueryRowContext(context.Background(), `SELECT count() FROM exposures WHERE experiment = 'recs'`).Scan(&exposed)
		_ = q.QueryRowContext(context.Background(), `SELECT count() FROM events WHERE type = '$recommendation'
			AND user_id = ?`, browserUser).Scan(&browserShown)
		return n > 0 && exposed > 0 && browserShown == 1
	})
}
