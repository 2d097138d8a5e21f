package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/jackc/pgx/v5/pgxpool"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/liftlab/lift/internal/testenv"
)

// chromiumPath is Debian's chromium, installed by `scripts/tools chromium` (make test).
const chromiumPath = "/usr/bin/chromium"

// newBrowser starts headless Chromium for one test; each call is a fresh profile, so
// no cookies are shared between users.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("chromium not found at %s: run scripts/tools chromium", chromiumPath)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("hide-scrollbars", true), chromedp.WindowSize(1280, 860),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	// A ceiling for a hung browser, not a speed check: under -race on a loaded
	// machine a long test takes minutes.
	ctx, cancelTimeout := context.WithTimeout(ctx, 6*time.Minute)
	t.Cleanup(func() { cancelTimeout(); cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// run1 runs actions, each group given two minutes, so a step that waits in vain
// fails with the page it was looking at rather than eating the browser's time.
func run1(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	// The first action on a new tab opens it for the life of the context it is given:
	// open it on ctx, not on the step's shorter one.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("%s: open tab: %v", what, err)
	}
	stepCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := chromedp.Do(stepCtx, actions...); err != nil {
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		body, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
		t.Fatalf("%s: %v\nat %s\n%.2000s", what, err, loc, body)
	}
}

// get runs one action that returns a value.
func get[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

func byID(id string) chromedp.CSS { return chromedp.CSS(`[data-testid="` + id + `"]`) }

func css(sel string) chromedp.CSS { return chromedp.CSS(sel) }

func loginAs(t *testing.T, ctx context.Context, base, email, password string) {
	t.Helper()
	run1(t, ctx, "login as "+email,
		chromedp.Navigate(base+"/login"),
		chromedp.WaitVisible(css("#email")),
		chromedp.SendKeys(css("#email"), email),
		chromedp.SendKeys(css("#password"), password),
		chromedp.Submit(css("#password")),
		chromedp.WaitVisible(byID("current-user")),
	)
}

// screenshots writes PNGs of the main pages to docs/screenshots when
// LIFT_SCREENSHOTS=1, so ordinary runs leave the tree clean.
type screenshots struct {
	t   *testing.T
	dir string
}

func newScreenshots(t *testing.T) screenshots {
	if os.Getenv("LIFT_SCREENSHOTS") != "1" {
		return screenshots{t: t}
	}
	dir := filepath.Join("..", "..", "docs", "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return screenshots{t: t, dir: dir}
}

func (s screenshots) take(ctx context.Context, name string) {
	if s.dir == "" {
		return
	}
	// The top bar is sticky: scroll back up so it is drawn once, at the top.
	get(s.t, ctx, "scroll up", chromedp.Evaluate[any]("window.scrollTo(0, 0)"))
	png := get(s.t, ctx, "screenshot "+name, chromedp.FullScreenshot(100))
	if err := os.WriteFile(filepath.Join(s.dir, name+".png"), png, 0o644); err != nil {
		s.t.Fatal(err)
	}
}

func TestDashboardEndToEnd(t *testing.T) {
	f := newFixture(t)
	const pw = "e2e password 1"
	runCLI(t, f.env, pw+"\n", "users", "create", "--email", "pm@example.com", "--role", "admin")
	runCLI(t, f.env, pw+"\n", "users", "create", "--email", "viewer@example.com", "--role", "viewer")
	runCLI(t, f.env, "", "demo", "seed")
	p := f.start(t)
	shots := newScreenshots(t)
	ctx := newBrowser(t)

	// Signed out, a page sends the visitor to the login form and back afterwards.
	run1(t, ctx, "logged-out redirect", chromedp.Navigate(p.url+"/flags"), chromedp.WaitVisible(css("#email")))
	loc := get(t, ctx, "location", chromedp.Location())
	if !strings.HasPrefix(loc, p.url+"/login?next=") {
		t.Fatalf("logged out /flags ended at %s", loc)
	}
	shots.take(ctx, "login")
	loginAs(t, ctx, p.url, "pm@example.com", pw)

	// Create an experiment through the form: variants, values, targeting, goal.
	run1(t, ctx, "create experiment",
		chromedp.Navigate(p.url+"/experiments/new"),
		chromedp.WaitVisible(byID("experiment-form")),
		chromedp.SendKeys(css("#key"), "pricing-page"),
		chromedp.SendKeys(css("#name"), "Pricing page layout"),
		chromedp.SendKeys(css("#description"), "Annual plans first lift upgrades."),
		chromedp.SetValue(css("#variant_value_0"), `{"layout":"monthly-first"}`),
		chromedp.SetValue(css("#variant_key_1"), "annual-first"),
		chromedp.SetValue(css("#variant_value_1"), `{"layout":"annual-first"}`),
		chromedp.SendKeys(css("#rule_attr_0"), "country"),
		chromedp.SetValue(css("#rule_op_0"), "$in"),
		chromedp.SendKeys(css("#rule_value_0"), "US, CA"),
		chromedp.SendKeys(css("#goal_event"), "purchase"),
	)
	shots.take(ctx, "experiment-form")
	// Weights that do not add up come back as field errors, not a 500.
	run1(t, ctx, "invalid weights",
		chromedp.SetValue(css("#variant_weight_0"), "70"),
		chromedp.Click(byID("save")),
		chromedp.WaitVisible(byID("form-errors")),
		chromedp.SetValue(css("#variant_weight_0"), "50"),
	)
	run1(t, ctx, "save experiment",
		chromedp.Click(byID("save")),
		chromedp.WaitVisible(byID("results-placeholder")),
	)

	// Start it, confirming first.
	run1(t, ctx, "start experiment",
		chromedp.Click(byID("start")),
		chromedp.WaitVisible(byID("confirm-button")),
		chromedp.Click(byID("confirm-button")),
		chromedp.WaitVisible(css(".badge-running")),
	)
	shots.take(ctx, "experiment")

	// The running experiment is served by /v1/decide within a second or so.
	var got decideResp
	if !testenv.Poll(10*time.Second, func() bool {
		got = decideResp{}
		f.client.want(200, "POST", "/v1/decide", `{"user_id":"u-42","attributes":{"country":"US"},"keys":["pricing-page"],"track":false}`, &got)
		d := got.Decisions["pricing-page"]
		return d.Reason == "split" && (d.Variant == "control" || d.Variant == "annual-first")
	}) {
		t.Fatalf("pricing-page not served by /v1/decide: %+v", got)
	}

	// A form posted without the CSRF token is refused, even with a valid session.
	cookies := browserCookies(t, ctx, p.url)
	form := url.Values{"key": {"forged"}, "variant_key": {"a", "b"}, "op": {"save"}}
	req, _ := http.NewRequest("POST", p.url+"/experiments", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Cookie", cookies)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("POST /experiments without CSRF token: %d, want 403", resp.StatusCode)
	}

	if shots.dir != "" {
		pages := []struct{ path, wait, name string }{
			{"/experiments", "experiments-table", "experiments"},
			{"/flags", "flags-table", "flags"},
			{"/flags/free-shipping", "flag-form", "flag-editor"},
			{"/segments", "segments-table", "segments"},
			{"/keys", "keys-table", "keys"},
			{"/users", "users-table", "users"},
			{"/audit", "audit-log", "audit"},
		}
		for _, pg := range pages {
			run1(t, ctx, "open "+pg.path, chromedp.Navigate(p.url+pg.path), chromedp.WaitVisible(byID(pg.wait)))
			shots.take(ctx, pg.name)
		}
		run1(t, ctx, "test a user",
			chromedp.Navigate(p.url+"/segments/us-mobile"),
			chromedp.WaitVisible(css("#attributes")),
			chromedp.SetValue(css("#attributes"), `{"country": "US", "device": "mobile"}`),
			chromedp.Click(byID("test-user")),
			chromedp.WaitVisible(byID("test-result")),
		)
		shots.take(ctx, "segment-test")
		run1(t, ctx, "phone width", chromedp.EmulateViewport(375, 812, chromedp.EmulateMobile),
			chromedp.Navigate(p.url+"/experiments/pricing-page"), chromedp.WaitVisible(byID("results-placeholder")))
		shots.take(ctx, "mobile-experiment")
	}

	// A viewer sees the pages but cannot edit.
	vctx := newBrowser(t)
	loginAs(t, vctx, p.url, "viewer@example.com", "e2e password 1")
	run1(t, vctx, "viewer experiment page", chromedp.Navigate(p.url+"/experiments/pricing-page"),
		chromedp.WaitVisible(byID("results-placeholder")))
	html := get(t, vctx, "viewer page html", chromedp.OuterHTML(css("main")))
	if strings.Contains(html, `data-testid="experiment-actions"`) {
		t.Error("viewer sees start/pause/stop/edit")
	}
	run1(t, vctx, "viewer edit page", chromedp.Navigate(p.url+"/experiments/pricing-page/edit"),
		chromedp.WaitVisible(byID("error-page")))
	html = get(t, vctx, "viewer error text", chromedp.Text(byID("error-page")))
	if !strings.Contains(html, "403") {
		t.Errorf("viewer edit page: %q", html)
	}

	// Results: users decided by /v1/decide (exposures logged) and purchases posted to
	// /v1/events show up on the experiment page as numbers, charts and a verdict.
	const users = 600
	counts := map[string]*struct{ users, buyers int }{"control": {}, "annual-first": {}}
	var events []string
	for i := range users {
		id := fmt.Sprintf("shopper-%d", i)
		var r decideResp
		f.client.want(200, "POST", "/v1/decide", `{"user_id":"`+id+`","attributes":{"country":"US"},"keys":["pricing-page"]}`, &r)
		v := r.Decisions["pricing-page"].Variant
		c := counts[v]
		if c == nil {
			t.Fatalf("decision for %s: %+v", id, r.Decisions)
		}
		c.users++
		// Known truth: 10% of control users buy, 20% of annual-first users.
		if rate := map[string]int{"control": 1, "annual-first": 2}[v]; i%10 < rate {
			c.buyers++
			events = append(events, fmt.Sprintf(`{"type":"purchase","user_id":%q,"value":49}`, id))
		}
	}
	// Purchases count only after a user's first exposure: let the exposures land first.
	time.Sleep(1500 * time.Millisecond)
	f.client.want(202, "POST", "/v1/events", `{"events":[`+strings.Join(events, ",")+`]}`, nil)

	rctx := newBrowser(t)
	loginAs(t, rctx, p.url, "pm@example.com", pw)
	testenv.Eventually(t, 30*time.Second, "the results page to show the results", func() bool {
		run1(t, rctx, "results page", chromedp.Navigate(p.url+"/experiments/pricing-page?refresh=1"), chromedp.WaitVisible(byID("experiment-name")))
		html := get(t, rctx, "results html", chromedp.OuterHTML(css("main")))
		if !strings.Contains(html, `data-testid="results"`) {
			return false
		}
		conv := get(t, rctx, "conversions", chromedp.Text(byID("goal-annual-first-count")))
		return get(t, rctx, "users", chromedp.Text(byID("total-users"))) == fmt.Sprintf("%d", users) &&
			conv == fmt.Sprintf("%d", counts["annual-first"].buyers)
	})
	for id, want := range map[string]string{
		"goal-control-users":      fmt.Sprint(counts["control"].users),
		"goal-control-count":      fmt.Sprint(counts["control"].buyers),
		"goal-annual-first-users": fmt.Sprint(counts["annual-first"].users),
	} {
		if got := get(t, rctx, id, chromedp.Text(byID(id))); got != want {
			t.Errorf("%s = %q, want %q", id, got, want)
		}
	}
	if got := get(t, rctx, "recommendation", chromedp.Text(byID("recommendation-decision"))); got == "" {
		t.Error("no recommendation")
	}
	run1(t, rctx, "results charts", chromedp.WaitVisible(byID("daily-chart")), chromedp.WaitVisible(byID("interval-annual-first")),
		chromedp.WaitVisible(byID("segments-table")))
	shots.take(rctx, "results")
	// The list shows the headline lift the experiment page just computed.
	run1(t, rctx, "list headline", chromedp.Navigate(p.url+"/experiments"), chromedp.WaitVisible(byID("experiments-table")))
	if got := get(t, rctx, "headline", chromedp.Text(byID("headline-pricing-page"))); !strings.Contains(got, "annual-first") {
		t.Errorf("list headline: %q", got)
	}
	shots.take(rctx, "experiments") // again, now with a headline lift and health badge

	ectx := newBrowser(t)
	loginAs(t, ectx, p.url, "pm@example.com", pw)
	dashboardEditors(t, f, p, ectx, shots)
	liveEvents(t, f, p, ectx, shots)
	firstHour(t, p, ectx, shots)
	phoneWidth(t, p, shots)
	if shots.dir != "" {
		run1(t, rctx, "phone width", chromedp.EmulateViewport(375, 812, chromedp.EmulateMobile),
			chromedp.Navigate(p.url+"/experiments/pricing-page"), chromedp.WaitVisible(byID("results")))
		shots.take(rctx, "mobile-results")
	}
}

// dashboardEditors drives the saved group editor, the behavioural segment builder
// (whose member count follows the segment engine) and a bandit declared the winner
// from the page.
func dashboardEditors(t *testing.T, f *fixture, p *liftProc, ctx context.Context, shots screenshots) {
	run1(t, ctx, "create saved group",
		chromedp.Navigate(p.url+"/saved-groups/new"), chromedp.WaitVisible(byID("group-form")),
		chromedp.SendKeys(css("#key"), "vip-accounts"), chromedp.SendKeys(css("#name"), "VIP accounts"),
		chromedp.SetValue(css("#values"), "acme-corp\nglobex\ninitech\numbrella\nhooli"),
		chromedp.Click(byID("save")), chromedp.WaitVisible(byID("delete")), // only on the saved group's page
	)
	shots.take(ctx, "saved-group")
	run1(t, ctx, "saved groups", chromedp.Navigate(p.url+"/saved-groups"), chromedp.WaitVisible(byID("group-vip-accounts")))
	shots.take(ctx, "saved-groups")

	// A behavioural segment through the builder: three product views in ten minutes,
	// or a cart left for 30 minutes.
	run1(t, ctx, "behavioural segment form",
		chromedp.Navigate(p.url+"/segments/new?kind=behavioral"), chromedp.WaitVisible(byID("rule-builder")),
		chromedp.SendKeys(css("#key"), "ready-to-buy"), chromedp.SendKeys(css("#name"), "Ready to buy"),
		chromedp.SetValue(css("#description"), "Browsing hard or about to buy"),
		chromedp.SetValue(css("#c0_count"), "3"), chromedp.SetValue(css("#c0_within"), "10m"),
		chromedp.Click(byID("add-clause")), chromedp.WaitVisible(byID("clause-1")),
		chromedp.SetValue(css("#rule_combine"), "or"),
		chromedp.SetValue(css("#c1_shape"), "sequence"),
		chromedp.WaitVisible(css("#c1_s0_event")),
		chromedp.SendKeys(css("#c1_s0_event"), "add_to_cart"), chromedp.SetValue(css("#c1_within"), "1d"),
		chromedp.SendKeys(css("#c1_absent_event"), "purchase"), chromedp.SendKeys(css("#c1_absent_within"), "30m"),
	)
	shots.take(ctx, "segment-builder")
	run1(t, ctx, "save behavioural segment", chromedp.Click(byID("save")), chromedp.WaitVisible(byID("members-now")))
	var seg struct {
		Rule json.RawMessage `json:"rule"`
	}
	f.server.want(200, "GET", "/api/v1/segments/ready-to-buy", "", &seg)
	if !jsonEqual(seg.Rule, `{"or":[{"event":"product_view","count_gte":3,"within":"10m"},
		{"sequence":[{"event":"add_to_cart"}],"within":"24h","absent":{"event":"purchase","within":"30m"}}]}`) {
		t.Errorf("builder wrote %s", seg.Rule)
	}
	// Once the engine runs the new definition, three views make a member, and the
	// page's size card follows by itself.
	pool, err := pgxpool.New(context.Background(), f.env["LIFT_POSTGRES_URL"])
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	testenv.Eventually(t, 20*time.Second, "the engine to run ready-to-buy", func() bool {
		var defs string
		_ = pool.QueryRow(context.Background(), "SELECT definitions FROM segment_checkpoints WHERE shard = 0").Scan(&defs)
		return strings.Contains(defs, "ready-to-buy")
	})
	for i := range 3 {
		f.client.want(202, "POST", "/v1/events", fmt.Sprintf(`{"events":[{"type":"product_view","user_id":"browser-1","properties":{"sku":"s%d"}}]}`, i), nil)
	}
	run1(t, ctx, "live size", chromedp.Poll[chromedp.Void](`document.querySelector('[data-testid="members-now"]').textContent.trim() === "1"`, chromedp.WithPollingTimeout(30*time.Second)))
	run1(t, ctx, "check a member",
		chromedp.SendKeys(css("#user_id"), "browser-1"), chromedp.Click(byID("check-user")),
		chromedp.WaitVisible(css(`[data-testid="test-result"].alert-success`)),
	)
	shots.take(ctx, "segment-behavioral")
	run1(t, ctx, "segments list", chromedp.Navigate(p.url+"/segments"), chromedp.WaitVisible(byID("segments-table")))
	if got := get(t, ctx, "list size", chromedp.Text(byID("size-ready-to-buy"))); strings.TrimSpace(got) != "1" {
		t.Errorf("list size of ready-to-buy = %q", got)
	}
	shots.take(ctx, "segments")

	// A bandit created through the form, started, and its winner declared: everyone
	// is then served the winner.
	run1(t, ctx, "bandit form",
		chromedp.Navigate(p.url+"/experiments/new"), chromedp.WaitVisible(byID("experiment-form")),
		chromedp.SendKeys(css("#key"), "reco-widget"), chromedp.SendKeys(css("#name"), "Recommendation widget"),
		chromedp.SetValue(css("#type"), "bandit"), chromedp.WaitVisible(byID("bandit-options")),
		chromedp.SetValue(css("#variant_key_1"), "personalised"),
		chromedp.SendKeys(css("#goal_event"), "add_to_cart"),
		chromedp.SetValue(css("#bandit_min_weight"), "5"),
		chromedp.Click(byID("add-metric")), chromedp.WaitVisible(byID("metric-0")),
		chromedp.SendKeys(css("#metric_key_0"), "revenue"), chromedp.SendKeys(css("#metric_event_0"), "purchase"),
		chromedp.SetValue(css("#metric_kind_0"), "value"),
	)
	shots.take(ctx, "experiment-bandit-form")
	run1(t, ctx, "save and start bandit",
		chromedp.Click(byID("save")), chromedp.WaitVisible(byID("bandit")),
		chromedp.Click(byID("start")), chromedp.WaitVisible(byID("confirm-button")),
		chromedp.Click(byID("confirm-button")), chromedp.WaitVisible(css(".badge-running")),
		chromedp.Click(byID("declare-winner")), chromedp.WaitVisible(byID("winner-form")),
		chromedp.Click(byID("winner-personalised")),
	)
	shots.take(ctx, "declare-winner")
	run1(t, ctx, "declare winner", chromedp.Click(byID("confirm-button")), chromedp.WaitVisible(byID("resume-learning")))
	testenv.Eventually(t, 10*time.Second, "the winner to be served", func() bool {
		for i := range 20 {
			var r decideResp
			f.client.want(200, "POST", "/v1/decide", fmt.Sprintf(`{"user_id":"w-%d","keys":["reco-widget"],"track":false}`, i), &r)
			if r.Decisions["reco-widget"].Variant != "personalised" {
				return false
			}
		}
		return true
	})
}

// liveEvents checks the live view: the purchases posted for the results, and a
// dead letter published straight to RabbitMQ, recorded while lift.dead keeps it.
func liveEvents(t *testing.T, f *fixture, p *liftProc, ctx context.Context, shots screenshots) {
	run1(t, ctx, "live events", chromedp.Navigate(p.url+"/events"), chromedp.WaitVisible(byID("events-table")))
	if got := get(t, ctx, "events", chromedp.Text(byID("events-table"))); !strings.Contains(got, "purchase") || !strings.Contains(got, "product_view") {
		t.Errorf("live events lack the purchases or views: %.300s", got)
	}
	shots.take(ctx, "live-events")
	ch := testenv.AMQPChannel(t, f.env["LIFT_AMQP_URL"], func(*amqp.Channel) error { return nil })
	for _, body := range []string{`{"type":"purchase","user_id":"shopper-7","value":-49}`, `{"type":"checkout_started","user_id":"shopper-9"}`, `{"type":`} {
		if err := ch.PublishWithContext(ctx, "lift.events", "purchase", false, false, amqp.Publishing{ContentType: "application/json", Body: []byte(body)}); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Eventually(t, 30*time.Second, "the three dead letters on the events page", func() bool {
		run1(t, ctx, "dead letters", chromedp.Navigate(p.url+"/events?tab=dead&live=0"), chromedp.WaitVisible(byID("dead-depth")))
		html := get(t, ctx, "dead html", chromedp.OuterHTML(byID("live-feed")))
		return strings.Count(html, `class="dead"`) == 3 && strings.Contains(html, `data-testid="dead-depth-value">3<`)
	})
	shots.take(ctx, "dead-letters")
}

// firstHour does what a product manager does in the first hour: a flag whose rule is
// written with the condition builder and rolled out to 20% (confirmed, listed as a
// rollout), and an experiment whose goal event type does not exist yet (a warning that
// offers to register it, and the registration).
func firstHour(t *testing.T, p *liftProc, ctx context.Context, shots screenshots) {
	run1(t, ctx, "new flag with a rule",
		chromedp.Navigate(p.url+"/flags/new"), chromedp.WaitVisible(byID("flag-form")),
		chromedp.SendKeys(css("#key"), "promo-banner"), chromedp.SendKeys(css("#name"), "Promo banner"),
		chromedp.Click(byID("add-rule")), chromedp.WaitVisible(css("#rule_0_attr_0")),
		chromedp.SendKeys(css("#rule_0_attr_0"), "country"), chromedp.SetValue(css("#rule_0_op_0"), "$in"),
		chromedp.SendKeys(css("#rule_0_value_0"), "US, CA"),
		chromedp.SetValue(css("#rule_rollout_0"), "20"), chromedp.SendKeys(css("#rule_value_0"), "true"),
		chromedp.Click(byID("save")), chromedp.WaitVisible(byID("flash")),
	)
	if got := get(t, ctx, "flash", chromedp.Text(byID("flash"))); !strings.Contains(got, "Promo banner") {
		t.Errorf("after saving a flag: %q", got)
	}
	if got := get(t, ctx, "rollout", chromedp.Text(byID("rollout-promo-banner"))); got != "rollout 20%" {
		t.Errorf("rollout column %q", got)
	}
	shots.take(ctx, "flags")
	run1(t, ctx, "flag editor", chromedp.Navigate(p.url+"/flags/promo-banner"), chromedp.WaitVisible(byID("rule-summary-0")))
	if got := get(t, ctx, "rule summary", chromedp.Text(byID("rule-summary-0"))); got != "Serves true to a 20% rollout of users whose country is one of US, CA." {
		t.Errorf("rule summary %q", got)
	}
	shots.take(ctx, "flag-editor")

	run1(t, ctx, "experiment with an unregistered goal",
		chromedp.Navigate(p.url+"/experiments/new"), chromedp.WaitVisible(byID("experiment-form")),
		chromedp.SendKeys(css("#key"), "signup-flow"), chromedp.SendKeys(css("#name"), "Signup flow"),
		chromedp.SendKeys(css("#variant_name_0"), "Long form"),
		chromedp.SetValue(css("#variant_key_1"), "short"), chromedp.SendKeys(css("#variant_name_1"), "Short form"),
		chromedp.SendKeys(css("#goal_event"), "signup"),
		chromedp.Click(byID("save")), chromedp.WaitVisible(byID("flash")), chromedp.WaitVisible(byID("unknown-event")),
	)
	if got := get(t, ctx, "variant name", chromedp.Text(byID("variant-short"))); !strings.Contains(got, "Short form") {
		t.Errorf("variants card: %q", got)
	}
	shots.take(ctx, "experiment-goal-warning")
	run1(t, ctx, "register the goal's event type",
		chromedp.Click(byID("flash-link")), chromedp.WaitVisible(byID("event-type-form")),
	)
	if got := get(t, ctx, "name", chromedp.Value(css("#name"))); got != "signup" {
		t.Errorf("the event type form asks for %q, want signup", got)
	}
	shots.take(ctx, "event-type-form")
	run1(t, ctx, "save the event type", chromedp.Click(byID("save")), chromedp.WaitVisible(byID("flash")),
		chromedp.Navigate(p.url+"/event-types"), chromedp.WaitVisible(byID("builtin-types")))
	shots.take(ctx, "event-types")
	run1(t, ctx, "goal registered", chromedp.Navigate(p.url+"/experiments/signup-flow"), chromedp.WaitVisible(byID("experiment-name")))
	if html := get(t, ctx, "page", chromedp.OuterHTML(css("main"))); strings.Contains(html, `data-testid="unknown-event"`) {
		t.Error("still warning about signup after registering it")
	}
}

// browserCookies returns the browser's cookies for base as a Cookie header.
func browserCookies(t *testing.T, ctx context.Context, base string) string {
	t.Helper()
	res, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{base}})
	if err != nil {
		t.Fatalf("read cookies: %v", err)
	}
	parts := make([]string, 0, len(res.Cookies))
	for _, c := range res.Cookies {
		parts = append(parts, fmt.Sprintf("%s=%s", c.Name, c.Value))
	}
	return strings.Join(parts, "; ")
}

// phoneWidth opens every page 375 px wide, as a phone shows it: nothing may make the
// page scroll sideways (wide tables scroll inside their card).
func phoneWidth(t *testing.T, p *liftProc, shots screenshots) {
	ctx := newBrowser(t)
	loginAs(t, ctx, p.url, "pm@example.com", "e2e password 1")
	run1(t, ctx, "phone", chromedp.EmulateViewport(375, 812, chromedp.EmulateMobile))
	for _, path := range []string{"/experiments", "/experiments/new", "/experiments/pricing-page", "/experiments/reco-widget",
		"/experiments/reco-widget/winner", "/flags", "/flags/free-shipping", "/segments", "/segments/ready-to-buy", "/segments/high-intent", "/segments/us-mobile",
		"/saved-groups", "/saved-groups/vip-accounts", "/events", "/events?tab=exposures", "/events?tab=dead", "/event-types",
		"/event-types/new", "/event-types/signup", "/flags/promo-banner", "/experiments/signup-flow",
		"/keys", "/users", "/audit", "/settings/privacy"} {
		run1(t, ctx, "phone "+path, chromedp.Navigate(p.url+path), chromedp.WaitVisible(css("main")))
		if w := get(t, ctx, "page width", chromedp.Evaluate[float64]("document.documentElement.scrollWidth")); w > 375 {
			t.Errorf("%s is %.0f px wide on a 375 px screen", path, w)
		}
	}
	run1(t, ctx, "phone live events", chromedp.Navigate(p.url+"/events"), chromedp.WaitVisible(byID("events-table")))
	shots.take(ctx, "mobile-live-events")
	run1(t, ctx, "phone segment", chromedp.Navigate(p.url+"/segments/ready-to-buy"), chromedp.WaitVisible(byID("segment-size")))
	shots.take(ctx, "mobile-segment")
}
