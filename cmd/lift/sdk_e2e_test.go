package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/liftlab/lift/internal/testenv"
	"github.com/liftlab/lift/migrations"
)

// sdkPage is a shop page on another origin than lift's (localhost against lift's
// 127.0.0.1): it imports lift.js from lift, renders the hero banner declaratively,
// records what lift.js sends, exposes the SDK as window.lift, and maps OpenFeature's
// packages (testdata/openfeature) for the OFREP provider.
const sdkPage = `<!doctype html><html><head><meta charset="utf-8"><title>shop</title>
<script type="importmap">{"imports": {"@openfeature/core": "/of/core.js", "@openfeature/web-sdk": "/of/web-sdk.js",
  "@openfeature/ofrep-core": "/of/ofrep-core.js", "@openfeature/ofrep-web-provider": "/of/ofrep-web-provider.js"}}</script>
</head><body>
<div data-lift="hero" id="hero">
  <h1 data-lift-variant="control">Classic</h1>
  <h1 data-lift-variant="bold">BOLD</h1>
  <h1 data-lift-default>Loading</h1>
</div>
<script type="module">
  const sent = [];
  const realFetch = window.fetch;
  window.fetch = (url, opts) => { sent.push({url: String(url), body: opts && opts.body}); return realFetch(url, opts); };
  window.sent = sent;
  const { init } = await import("{{LIFT}}/static/lift.js");
  window.lift = init({endpoint: "{{LIFT}}", clientKey: "{{KEY}}", attributes: {country: "US"},
    consent: {analytics: true, personalization: true}, flushInterval: 60000});
  await window.lift.decide();
  window.ready = true;
</script></body></html>`

// TestBrowserSDK drives lift.js in headless Chromium against a real lift on the real
// services: a page on another origin renders its decisions, exposures and events
// reach ClickHouse, and events tracked right before the page is closed (or left) are
// all stored, once.
func TestBrowserSDK(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("drives a browser against the real pipeline")
	}
	f := newFixture(t)
	p := f.start(t)
	f.server.want(201, "POST", "/api/v1/experiments", `{"key":"hero","status":"running",
		"variants":[{"key":"control","weight":0.5},{"key":"bold","weight":0.5}],"goal":{"event":"purchase","kind":"conversion"}}`, nil)
	f.server.want(201, "POST", "/api/v1/experiments", `{"key":"reco","type":"bandit","status":"running",
		"variants":[{"key":"a"},{"key":"b"},{"key":"c"}],"goal":{"event":"click","kind":"conversion"},"bandit":{"sticky":true}}`, nil)
	f.server.want(201, "POST", "/api/v1/experiments", `{"key":"of-test","status":"running",
		"variants":[{"key":"x","weight":0.5},{"key":"y","weight":0.5}]}`, nil)
	testenv.Eventually(t, 5*time.Second, "the three experiments to be served", func() bool {
		var r decideResp
		f.client.want(200, "POST", "/v1/decide", `{"user_id":"probe","track":false}`, &r)
		return len(r.Decisions) == 3 && r.Decisions["reco"].Reason == "bandit"
	})

	// The shop, on its own origin.
	liftURL := p.url
	page := strings.NewReplacer("{{LIFT}}", liftURL, "{{KEY}}", f.client.key).Replace(sdkPage)
	// The shop also serves OpenFeature's web SDK and OFREP provider (testdata/openfeature).
	openFeature := http.StripPrefix("/of/", http.FileServer(http.Dir("testdata/openfeature")))
	shop := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/of/") {
			openFeature.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, page)
	}))
	ln, err := net.Listen("tcp", "localhost:0")
	if err != nil {
		t.Fatal(err)
	}
	shop.Listener = ln
	shop.Start()
	defer shop.Close()
	shopURL := fmt.Sprintf("http://localhost:%d/", ln.Addr().(*net.TCPAddr).Port)

	count := clickhouseCount(t, f.env)

	browser := newBrowser(t)
	open := func() context.Context {
		tab, cancel := chromedp.NewContext(browser)
		t.Cleanup(cancel)
		run1(t, tab, "open the shop", chromedp.Navigate(shopURL), chromedp.Poll[chromedp.Void]("window.ready === true", chromedp.WithPollingTimeout(20*time.Second)))
		return tab
	}
	eval := func(ctx context.Context, js string) string {
		return get(t, ctx, js, chromedp.Evaluate[string](js, chromedp.EvalAwaitPromise))
	}

	// Decisions rendered: the page shows the variant lift gives this visitor.
	tab := open()
	anon := eval(tab, "window.lift.id")
	var want decideResp
	f.client.want(200, "POST", "/v1/decide", `{"user_id":"`+anon+`","attributes":{"country":"US"},"track":false}`, &want)
	heroVariant := want.Decisions["hero"].Variant
	shown := eval(tab, `[...document.querySelectorAll("#hero > *")].filter(e => !e.hidden).map(e => e.textContent).join()`)
	if wantText := map[string]string{"control": "Classic", "bold": "BOLD"}[heroVariant]; shown != wantText {
		t.Fatalf("page shows %q, want %q (variant %s)", shown, wantText, heroVariant)
	}
	if cookie := eval(tab, "document.cookie"); !strings.Contains(cookie, "lift_id="+anon) {
		t.Errorf("anonymous id cookie missing: %q", cookie)
	}
	// Consent passed through on decide; decide asked lift not to log exposures, as
	// the SDK logs them when the variant is rendered.
	decideBody := eval(tab, `window.sent.find(s => s.url.endsWith("/v1/decide")).body`)
	if !strings.Contains(decideBody, `"consent":{"analytics":true,"personalization":true}`) || !strings.Contains(decideBody, `"track":false`) {
		t.Errorf("decide body %s", decideBody)
	}
	// Sticky bucket stored for the bandit.
	if sticky := eval(tab, `localStorage.getItem("lift:sticky:`+anon+`")`); !strings.Contains(sticky, `"reco":"`+want.Decisions["reco"].Variant+`"`) {
		t.Errorf("sticky bucket %q, want reco=%s", sticky, want.Decisions["reco"].Variant)
	}

	// OpenFeature's own OFREP web provider against lift, from this origin: the same
	// visitor (openFeatureContext), and lift.js's hook logs the experiment's exposure.
	ofrep := eval(tab, `(async () => {
		const { OpenFeature } = await import("@openfeature/web-sdk");
		const { OFREPWebProvider } = await import("@openfeature/ofrep-web-provider");
		await OpenFeature.setContext(window.lift.openFeatureContext());
		OpenFeature.addHooks(window.lift.openFeatureHook());
		await OpenFeature.setProviderAndWait(new OFREPWebProvider({baseUrl: "`+liftURL+`",
			headers: [["Authorization", "Bearer `+f.client.key+`"]]}));
		const d = OpenFeature.getClient().getStringDetails("of-test", "none");
		return [d.variant, d.value, d.reason, d.errorCode || ""].join("|");
	})()`)
	var ofWant decideResp
	f.client.want(200, "POST", "/v1/decide", `{"user_id":"`+anon+`","attributes":{"country":"US"},"keys":["of-test"],"track":false}`, &ofWant)
	ofrepVariant := ofWant.Decisions["of-test"].Variant
	if want := ofrepVariant + "|" + ofrepVariant + "|SPLIT|"; ofrep != want {
		t.Errorf("OpenFeature evaluation %q, want %q", ofrep, want)
	}

	// Events tracked right before the tab closes: the pagehide beacon delivers them.
	eval(tab, `(() => { for (let i = 0; i < 40; i++) window.lift.track("product_view", {properties: {sku: "sku-" + i}}); return ""; })()`)
	if err := chromedp.Cancel(tab); err != nil {
		t.Fatalf("close the tab: %v", err)
	}
	testenv.Eventually(t, 30*time.Second, "the 40 product views in ClickHouse", func() bool {
		return count("SELECT count() FROM events FINAL WHERE user_id = ? AND type = 'product_view'", anon) == 40
	})
	testenv.Eventually(t, 30*time.Second, "the two exposures in ClickHouse", func() bool {
		return count("SELECT count() FROM exposures FINAL WHERE user_id = ? AND experiment = 'hero' AND variant = ?", anon, heroVariant) == 1 &&
			count("SELECT count() FROM exposures FINAL WHERE user_id = ? AND experiment = 'of-test' AND variant = ?", anon, ofrepVariant) == 1
	})
	// The bandit was decided but never rendered: no exposure.
	if n := count("SELECT count() FROM exposures FINAL WHERE user_id = ? AND experiment = 'reco'", anon); n != 0 {
		t.Errorf("%d exposures of the unrendered bandit", n)
	}

	// Same visitor (cookie), next page: the exposure is not logged again; identify
	// links the ids; events tracked right before navigating away arrive too.
	tab = open()
	if id := eval(tab, "window.lift.id"); id != anon {
		t.Fatalf("second page has id %s, want the cookie's %s", id, anon)
	}
	// Decisions came from the cache (fresh for a minute): no request to lift.
	if n := eval(tab, `String(window.sent.filter(s => s.url.endsWith("/v1/decide")).length)`); n != "0" {
		t.Errorf("second page sent %s decide requests, want 0 (cached)", n)
	}
	eval(tab, `(async () => { await window.lift.identify("customer-42"); return ""; })()`)
	eval(tab, `(() => { for (let i = 0; i < 25; i++) window.lift.track("purchase", {value: i}); return ""; })()`)
	run1(t, tab, "leave the page", chromedp.Navigate("about:blank"))
	testenv.Eventually(t, 30*time.Second, "the purchases and the $identify in ClickHouse", func() bool {
		return count("SELECT count() FROM events FINAL WHERE user_id = 'customer-42' AND type = 'purchase'") == 25 &&
			count("SELECT count() FROM events FINAL WHERE user_id = 'customer-42' AND type = '$identify' AND visitParamExtractString(properties, 'anonymous_id') = ?", anon) == 1
	})
	if n := count("SELECT count() FROM exposures FINAL WHERE user_id = ? AND experiment = 'hero'", anon); n != 1 {
		t.Errorf("%d exposures of hero for the anonymous visitor, want 1", n)
	}
	// After identify the page decides for the logged-in id, and its sticky bandit arm
	// came along from the anonymous visitor.
	var logged decideResp
	f.client.want(200, "POST", "/v1/decide", `{"user_id":"customer-42","attributes":{"country":"US"},"track":false}`, &logged)
	tab = open()
	if id := eval(tab, "window.lift.id"); id != "customer-42" {
		t.Errorf("after identify the id is %s", id)
	}
	if v := eval(tab, `window.lift.decisions.reco.variant`); v != want.Decisions["reco"].Variant {
		t.Errorf("logged-in reco arm %s, want the anonymous visitor's sticky %s", v, want.Decisions["reco"].Variant)
	}
	if v := eval(tab, `window.lift.decisions.hero.variant`); v != logged.Decisions["hero"].Variant {
		t.Errorf("logged-in hero %s, want lift's %s", v, logged.Decisions["hero"].Variant)
	}
	// Without any consent the visitor is not remembered: the cookie goes.
	eval(tab, `(async () => { await window.lift.setConsent({analytics: false, personalization: false}); return ""; })()`)
	if cookie := eval(tab, "document.cookie"); strings.Contains(cookie, "lift_id=") {
		t.Errorf("cookie kept without consent: %q", cookie)
	}
	if body := eval(tab, `window.sent.filter(s => s.url.endsWith("/v1/decide")).pop().body`); !strings.Contains(body, `"consent":{"analytics":false,"personalization":false}`) {
		t.Errorf("decide after setConsent: %s", body)
	}
}

// clickhouseCount returns a function running a count query on the test's ClickHouse
// database.
func clickhouseCount(t *testing.T, env map[string]string) func(q string, args ...any) uint64 {
	t.Helper()
	ch := migrations.OpenClickHouse(env["LIFT_CLICKHOUSE_ADDR"], env["LIFT_CLICKHOUSE_DB"])
	t.Cleanup(func() { ch.Close() })
	return func(q string, args ...any) (n uint64) {
		t.Helper()
		if err := ch.QueryRow(q, args...).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
}
