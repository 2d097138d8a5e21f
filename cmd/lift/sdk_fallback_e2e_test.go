package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/liftlab/lift/internal/testenv"
)

// fallbackPage is a shop page with one [data-lift] block, the anti-flicker CSS as
// docs/sdk.md documents it, and a sampler that records, every 10 ms from the first
// moment the block exists, which of its children a visitor can see. It also records
// what lift.js writes to the console.
const fallbackPage = `<!doctype html><html class="lift-loading"><head><meta charset="utf-8"><title>shop</title>
<style>{{CSS}}</style>
<script>
  window.samples = []; window.logs = [];
  for (const level of ["log", "info", "warn", "error", "debug"]) {
    const orig = console[level].bind(console);
    console[level] = (...a) => { window.logs.push(level + ": " + a.map(String).join(" ")); orig(...a); };
  }
  const t0 = performance.now();
  window.sample = () => {
    const hero = document.getElementById("hero");
    if (!hero) return;
    const shown = [...hero.children].filter((e) => {
      const cs = getComputedStyle(e);
      return cs.display !== "none" && cs.visibility !== "hidden";
    }).map((e) => e.hasAttribute("data-lift-default") ? "default" : e.dataset.liftVariant).join("+") || "none";
    const last = window.samples[window.samples.length - 1];
    if (!last || last.shown !== shown) window.samples.push({t: Math.round(performance.now() - t0), shown});
  };
  setInterval(window.sample, 10);
</script>
</head><body>
<div data-lift="hero" id="hero">
  <h1 data-lift-variant="control">Classic</h1>
  <h1 data-lift-variant="bold">BOLD</h1>
  <h1 data-lift-default>Welcome</h1>
</div>
<script>window.sample();</script>
<script type="module">
  try {
    const { init } = await import("{{SCRIPT}}");
    window.lift = init({endpoint: "{{ENDPOINT}}", clientKey: "{{KEY}}", flushInterval: 200});
    window.lift.track("page_view");
    window.decided = await window.lift.decide();
  } catch (e) {
    window.importError = String(e);
  }
  window.ready = true;
</script></body></html>`

// antiFlickerCSS is the CSS block of docs/sdk.md, so the test checks what the docs
// tell people to use.
func antiFlickerCSS(t *testing.T) string {
	t.Helper()
	doc, err := os.ReadFile("../../docs/sdk.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)```css\n(/\\* lift.js anti-flicker CSS.*?)```").FindSubmatch(doc)
	if m == nil {
		t.Fatal("docs/sdk.md has no anti-flicker CSS block")
	}
	return string(m[1])
}

// countingProxy sits between the page and lift: it counts requests by path and holds
// /v1/decide answers back for delay.
type countingProxy struct {
	mu     sync.Mutex
	counts map[string]int
	delay  atomic.Int64 // ns
	url    string
}

func newCountingProxy(t *testing.T, target string) *countingProxy {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &countingProxy{counts: map[string]int{}}
	rp := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodOptions {
			p.mu.Lock()
			p.counts[r.URL.Path]++
			p.mu.Unlock()
		}
		if r.URL.Path == "/v1/decide" && r.Method == http.MethodPost {
			time.Sleep(time.Duration(p.delay.Load()))
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	p.url = srv.URL
	return p
}

func (p *countingProxy) count(path string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.counts[path]
}

type sample struct {
	T     int    `json:"t"`
	Shown string `json:"shown"`
}

// TestBrowserSDKFallbacks: whenever lift has not answered, a [data-lift] block shows
// its default and nothing else, with the documented CSS, in headless Chromium: a
// wrong key (said once on the console, no retries), lift's API down, lift down
// altogether (lift.js does not even load), an answer slower than renderTimeout (not
// rendered, but cached for the next page). A prompt answer shows the variant without
// the default appearing first. track() reads timestamps as documented.
func TestBrowserSDKFallbacks(t *testing.T) {
	if testing.Short() {
		t.Skip("drives a browser against a real lift")
	}
	f := newFixture(t)
	p := f.start(t)
	f.server.want(201, "POST", "/api/v1/experiments", `{"key":"hero","status":"running",
		"variants":[{"key":"control","weight":0.5},{"key":"bold","weight":0.5}]}`, nil)
	testenv.Eventually(t, 5*time.Second, "hero to be served by split", func() bool {
		var r decideResp
		f.client.want(200, "POST", "/v1/decide", `{"user_id":"probe","track":false}`, &r)
		return r.Decisions["hero"].Reason == "split"
	})
	css := antiFlickerCSS(t)
	liftJS, err := os.ReadFile("../../web/static/lift.js")
	if err != nil {
		t.Fatal(err)
	}
	proxy := newCountingProxy(t, p.url)
	// A port nothing listens on: lift down.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()

	// The shop, on its own origin; each case is a page of it.
	pages := map[string]string{}
	shop := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/lift.js" { // a copy of lift.js, for a page whose lift is down
			w.Header().Set("Content-Type", "text/javascript")
			_, _ = w.Write(liftJS)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, pages[r.URL.Path])
	}))
	shopLn, err := net.Listen("tcp", "localhost:0")
	if err != nil {
		t.Fatal(err)
	}
	shop.Listener = shopLn
	shop.Start()
	defer shop.Close()
	shopURL := fmt.Sprintf("http://localhost:%d", shopLn.Addr().(*net.TCPAddr).Port)
	page := func(path, script, endpoint, key string) string {
		pages[path] = strings.NewReplacer("{{CSS}}", css, "{{SCRIPT}}", script, "{{ENDPOINT}}", endpoint, "{{KEY}}", key).Replace(fallbackPage)
		return shopURL + path
	}
	wrongKey := page("/wrong-key", p.url+"/static/lift.js", proxy.url, "lift_ck_thisisnotakeythisisnotakey0000")
	apiDown := page("/api-down", shopURL+"/lift.js", dead, f.client.key)
	allDown := page("/all-down", dead+"/static/lift.js", dead, f.client.key)
	slow := page("/slow", p.url+"/static/lift.js", proxy.url, f.client.key)
	prompt := page("/prompt", p.url+"/static/lift.js", p.url, f.client.key)

	browser := newBrowser(t)
	// Each visit gets a fresh browser context (its own localStorage), unless it
	// continues one.
	visit := func(t *testing.T, ctx context.Context, u string) context.Context {
		if ctx == nil {
			ctx, _ = chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
		} else {
			ctx, _ = chromedp.NewContext(ctx)
		}
		run1(t, ctx, "open "+u, chromedp.Navigate(u), chromedp.Poll[chromedp.Void]("window.ready === true", chromedp.WithPollingTimeout(20*time.Second)))
		return ctx
	}
	eval := func(t *testing.T, ctx context.Context, js string) string {
		return get(t, ctx, js, chromedp.Evaluate[string](js, chromedp.EvalAwaitPromise))
	}
	// shown returns the distinct states the block went through, in order.
	shown := func(t *testing.T, ctx context.Context) []string {
		var samples []sample
		if err := json.Unmarshal([]byte(eval(t, ctx, "JSON.stringify(window.samples)")), &samples); err != nil {
			t.Fatal(err)
		}
		var states []string
		for _, s := range samples {
			states = append(states, s.Shown)
		}
		return states
	}
	// onlyEver fails unless the block was blank (hidden while lift answers) and then
	// showed want, and nothing else, ever.
	onlyEver := func(t *testing.T, name string, ctx context.Context, want string) {
		t.Helper()
		got := shown(t, ctx)
		if strings.Join(got, ",") != "none,"+want && strings.Join(got, ",") != want {
			t.Errorf("%s: the block showed %v, want only %s (after being blank)", name, got, want)
		}
	}
	liftLogs := func(t *testing.T, ctx context.Context) []string {
		var logs []string
		_ = json.Unmarshal([]byte(eval(t, ctx, `JSON.stringify(window.logs.filter((l) => l.includes("lift")))`)), &logs)
		return logs
	}
	settle := 3 * time.Second // past renderTimeout, the CSS reveal and a dozen flushIntervals

	t.Run("wrong key", func(t *testing.T) {
		ctx := visit(t, nil, wrongKey)
		time.Sleep(settle)
		onlyEver(t, "wrong key", ctx, "default")
		if logs := liftLogs(t, ctx); len(logs) != 1 || !strings.Contains(logs[0], "401") || !strings.Contains(logs[0], "clientKey") {
			t.Errorf("console: %q, want one message naming the 401 and clientKey", logs)
		}
		if d, e := proxy.count("/v1/decide"), proxy.count("/v1/events"); d != 1 || e > 1 {
			t.Errorf("%d decide and %d events requests in %s, want 1 and at most 1 (no retries after a 401)", d, e, settle)
		}
		if q := eval(t, ctx, `localStorage.getItem("lift:queue")`); !strings.Contains(q, "page_view") {
			t.Errorf("the page_view left the queue: %s", q)
		}
		if d := eval(t, ctx, "JSON.stringify(window.decided ?? null)"); d != "{}" {
			t.Errorf("decide() resolved to %s, want {}", d)
		}
	})
	t.Run("API down", func(t *testing.T) {
		ctx := visit(t, nil, apiDown)
		time.Sleep(settle)
		onlyEver(t, "API down", ctx, "default")
		if logs := liftLogs(t, ctx); len(logs) > 1 {
			t.Errorf("console: %q, want at most one message", logs)
		}
	})
	t.Run("lift down", func(t *testing.T) {
		ctx := visit(t, nil, allDown)
		if e := eval(t, ctx, "String(window.importError)"); e == "undefined" {
			t.Fatal("lift.js loaded from a port nothing listens on")
		}
		time.Sleep(settle)
		onlyEver(t, "lift down", ctx, "default")
	})
	t.Run("slow answer", func(t *testing.T) {
		proxy.delay.Store(int64(2500 * time.Millisecond))
		defer proxy.delay.Store(0)
		ctx := visit(t, nil, slow) // ready once the late answer arrived
		time.Sleep(500 * time.Millisecond)
		onlyEver(t, "slow answer", ctx, "default")
		if logs := liftLogs(t, ctx); len(logs) != 0 {
			t.Errorf("console: %q, want nothing", logs)
		}
		// The late answer was kept: the next page shows the variant at once, from
		// the cache, without asking lift.
		served := eval(t, ctx, "String(window.decided?.hero?.variant)")
		before := proxy.count("/v1/decide")
		next := visit(t, ctx, slow)
		onlyEver(t, "next page", next, served)
		if n := proxy.count("/v1/decide") - before; n != 0 {
			t.Errorf("the next page asked lift %d times, want 0 (cached)", n)
		}
	})
	t.Run("prompt answer", func(t *testing.T) {
		ctx := visit(t, nil, prompt)
		served := eval(t, ctx, "String(window.decided?.hero?.variant)")
		time.Sleep(500 * time.Millisecond)
		onlyEver(t, "prompt answer", ctx, served)
		if logs := liftLogs(t, ctx); len(logs) != 0 {
			t.Errorf("console: %q, want nothing", logs)
		}

		// track()'s timestamp: a Date, RFC 3339 with a zone, epoch milliseconds.
		got := eval(t, ctx, `(() => {
			window.lift.clockSkew = 0;
			const at = Date.now() - 60000, iso = new Date(at).toISOString();
			const stamp = (ts) => {
				const id = window.lift.track("click", {timestamp: ts});
				return JSON.parse(localStorage.getItem("lift:queue")).find((e) => e.event_id === id).timestamp === iso ? "ok" : "wrong";
			};
			const out = [stamp(new Date(at)), stamp(iso), stamp(iso.replace("T", " ").replace("Z", "+00:00")), stamp(at)];
			for (const ts of ["2026-12-07 08:00:00", Math.floor(at / 1000), "yesterday"]) {
				try { window.lift.track("click", {timestamp: ts}); out.push("accepted"); } catch (e) { out.push(e.name + ": " + e.message); }
			}
			return JSON.stringify(out);
		})()`)
		var out []string
		if err := json.Unmarshal([]byte(got), &out); err != nil {
			t.Fatal(err)
		}
		if strings.Join(out[:4], ",") != "ok,ok,ok,ok" {
			t.Errorf("timestamps as Date, RFC 3339, RFC 3339 with a space and offset, epoch ms: %v", out[:4])
		}
		for i, want := range []string{"RFC 3339", "looks like seconds", "RFC 3339"} {
			if !strings.HasPrefix(out[4+i], "TypeError: lift: track(): timestamp") || !strings.Contains(out[4+i], want) {
				t.Errorf("bad timestamp %d: %q, want a TypeError mentioning %q", i, out[4+i], want)
			}
		}
	})
}
