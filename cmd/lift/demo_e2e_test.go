package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/liftlab/lift/internal/testenv"
)

// TestDemo is what `make run` sets up, on the real services: `lift demo seed --keys`,
// a server with the demo shop, and a background `lift simulate`. A visitor of /demo
// sees the hero banner and recommendation block lift chose, gets the High Intent
// discount after viewing three products, and their purchase reaches ClickHouse; the
// dashboard shows results within a minute of the simulation starting. With
// LIFT_SCREENSHOTS=1 it writes docs/screenshots/demo-*.png for the README.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("drives a browser and a simulation against the real pipeline")
	}
	f := newFixture(t)
	keysFile := filepath.Join(t.TempDir(), "demo-keys.env")
	out := runCLI(t, f.env, "", "demo", "seed", "--keys", keysFile)
	if !strings.Contains(out, "created: demo keys") || !strings.Contains(out, "created: experiment recommendations") {
		t.Fatalf("demo seed:\n%s", out)
	}
	if again := runCLI(t, f.env, "", "demo", "seed", "--keys", keysFile); !strings.Contains(again, "exists:  demo keys") {
		t.Errorf("second demo seed did not keep the keys:\n%s", again)
	}
	keys := map[string]string{}
	data, _ := os.ReadFile(keysFile)
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		k, v, _ := strings.Cut(line, "=")
		keys[k] = v
	}
	f.env["LIFT_DEMO_CLIENT_KEY"] = keys["LIFT_DEMO_CLIENT_KEY"]
	const pw = "demo password 1"
	runCLI(t, f.env, pw+"\n", "users", "create", "--email", "admin@lift.local", "--role", "admin")
	p := f.start(t)

	// The background simulation, as make run starts it.
	simCtx, stopSim := context.WithCancel(context.Background())
	simDone := make(chan error, 1)
	simStart := time.Now()
	go func() {
		var stdout, stderr bytes.Buffer
		simDone <- run(simCtx, []string{"simulate", "--url", p.url, "--key", keys["LIFT_DEMO_CLIENT_KEY"], "--no-report",
			"--duration", "0", "--rate", "15", "--wait-ready", "30s"}, envFunc(f.env), strings.NewReader(""), &stdout, &stderr)
	}()
	defer func() {
		stopSim()
		if err := <-simDone; err != nil {
			t.Errorf("background simulation: %v", err)
		}
	}()

	shots := newScreenshots(t)
	browser := newBrowser(t)
	tab, cancel := chromedp.NewContext(browser)
	defer cancel()
	run1(t, tab, "open the shop", chromedp.Navigate(p.url+"/demo"),
		chromedp.Poll[chromedp.Void](`document.querySelector("#reco").dataset.arm`, chromedp.WithPollingTimeout(20*time.Second)))
	eval := func(js string) string {
		return get(t, tab, js, chromedp.Evaluate[string](js, chromedp.EvalAwaitPromise))
	}
	visitor := eval("window.lift.id")
	var want decideResp
	f.client.key = keys["LIFT_DEMO_CLIENT_KEY"]
	f.client.want(200, "POST", "/v1/decide", `{"user_id":"`+visitor+`","attributes":{"device":"desktop","returning":false,"visits":1,"country":"US"},"track":false}`, &want)
	hero := eval(`document.querySelector('[data-lift="hero-banner"]').dataset.liftServed`)
	arm := eval(`document.querySelector("#reco").dataset.arm`)
	if hero != want.Decisions["hero-banner"].Variant || arm != want.Decisions["recommendations"].Variant {
		t.Errorf("page shows hero %s and reco %s; lift decides %s and %s", hero, arm,
			want.Decisions["hero-banner"].Variant, want.Decisions["recommendations"].Variant)
	}
	if shipping := eval(`String(!document.querySelector('[data-testid="free-shipping"]').hidden)`); shipping != string(want.Decisions["free-shipping"].Value) {
		t.Errorf("free-shipping banner shown %s, flag value %s", shipping, want.Decisions["free-shipping"].Value)
	}
	shots.take(tab, "demo-shop")

	// Three product views: High Intent, and the discount, within a few seconds.
	for i := range 3 {
		run1(t, tab, "view a product", chromedp.Click(css(`#grid .product:nth-child(`+string(rune('1'+i))+`) .art`)))
	}
	run1(t, tab, "the discount appears", chromedp.WaitVisible(byID("offer")))
	run1(t, tab, "buy", chromedp.Click(byID("add-lamp-arc")), chromedp.Click(byID("buy")))
	shots.take(tab, "demo-offer")

	count := clickhouseCount(t, f.env)
	testenv.Eventually(t, 30*time.Second, "the visitor's purchase and exposures in ClickHouse", func() bool {
		// 189 less the 15% discount.
		return count("SELECT count() FROM events FINAL WHERE user_id = ? AND type = 'purchase' AND value = 160.65", visitor) == 1 &&
			count("SELECT count() FROM exposures FINAL WHERE user_id = ? AND experiment IN ('hero-banner', 'recommendations')", visitor) == 2
	})

	// The dashboard has results from the simulation within a minute of its start.
	var res struct{ Users float64 }
	for {
		f.server.want(200, "GET", "/api/v1/experiments/hero-banner/results", "", &res)
		if res.Users >= 100 {
			break
		}
		if time.Since(simStart) > time.Minute {
			t.Fatalf("a minute after the simulation started, hero-banner has %v users", res.Users)
		}
		time.Sleep(time.Second)
	}
	t.Logf("hero-banner: %v users %.0f s after the simulation started", res.Users, time.Since(simStart).Seconds())
	loginAs(t, tab, p.url, "admin@lift.local", pw)
	run1(t, tab, "results page", chromedp.Navigate(p.url+"/experiments/hero-banner?refresh=1"), chromedp.WaitVisible(byID("results")))
	if users := get(t, tab, "users", chromedp.Text(byID("total-users"))); users == "" || users == "0" {
		t.Errorf("dashboard shows %q users", users)
	}
	shots.take(tab, "demo-results")
	if shots.dir != "" {
		// A fuller bandit picture for the screenshot: a few updates more.
		time.Sleep(25 * time.Second)
	}
	run1(t, tab, "bandit page", chromedp.Navigate(p.url+"/experiments/recommendations?refresh=1"), chromedp.WaitVisible(byID("bandit")),
		chromedp.WaitVisible(byID("results")))
	// One set of numbers: each arm's users in the results are its users in the two
	// segments' cards, nobody falls outside them (no fallback card), and there is no
	// sample-ratio check or control on a bandit.
	has := func(id string) bool {
		return get(t, tab, "has "+id, chromedp.Evaluate[bool](`!!document.querySelector('[data-testid="`+id+`"]')`))
	}
	number := func(id string) float64 {
		text := get(t, tab, id, chromedp.Text(byID(id)))
		x, err := strconv.ParseFloat(strings.ReplaceAll(text, ",", ""), 64)
		if err != nil {
			t.Fatalf("%s: %q is not a number", id, text)
		}
		return x
	}
	for _, arm := range []string{"trending", "similar", "bestsellers"} {
		if all, bySegment := number("goal-"+arm+"-users"), number("users-new-"+arm)+number("users-returning-"+arm); all != bySegment {
			t.Errorf("%s: %v users in the results, %v in the segments' cards", arm, all, bySegment)
		}
	}
	for _, id := range []string{"bandit-segment-fallback", "bandit-segment-all", "srm-status", "srm-banner"} {
		if has(id) {
			t.Errorf("the bandit page has %s", id)
		}
	}
	shots.take(tab, "demo-bandit")
}
