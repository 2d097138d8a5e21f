package main

import (
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// TestFavicon loads dashboard pages in Chromium and checks that each links lift's
// icon, that /favicon.ico answers with it, and that no request of any page failed
// (before the icon existed, every page logged a 404 for /favicon.ico).
func TestFavicon(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	const pw = "favicon password 1"
	runCLI(t, f.env, pw+"\n", "users", "create", "--email", "pm@example.com", "--role", "admin")
	p := f.start(t)
	ctx := newBrowser(t)

	var mu sync.Mutex
	var failed []string
	if err := chromedp.Listen(ctx, func(ev any) {
		if r, ok := ev.(*network.EventResponseReceived); ok && r.Response.Status >= 400 {
			mu.Lock()
			failed = append(failed, r.Response.URL+" → "+r.Response.StatusText)
			mu.Unlock()
		}
	}); err != nil {
		t.Fatal(err)
	}
	console := chromedp.Console(ctx)

	loginAs(t, ctx, p.url, "pm@example.com", pw)
	for _, path := range []string{"/experiments", "/flags", "/segments", "/events"} {
		run1(t, ctx, "open "+path, chromedp.Navigate(p.url+path), chromedp.WaitVisible(byID("current-user")))
		href := get(t, ctx, "icon link of "+path, chromedp.Evaluate[string](`document.querySelector('link[rel="icon"]').href`))
		if href != p.url+"/favicon.ico" {
			t.Fatalf("%s links the icon %q, want %s/favicon.ico", path, href, p.url)
		}
	}
	got := get(t, ctx, "fetch the icon", chromedp.Evaluate[string](
		`fetch('/favicon.ico').then(r => r.arrayBuffer().then(b => r.status + ' ' + r.headers.get('Content-Type') + ' ' + b.byteLength))`,
		chromedp.EvalAwaitPromise))
	if fields := strings.Fields(got); len(fields) != 3 || fields[0] != "200" || fields[1] != "image/x-icon" || fields[2] == "0" {
		t.Fatalf("GET /favicon.ico: %s, want 200 image/x-icon with a body", got)
	}

	mu.Lock()
	defer mu.Unlock()
	if len(failed) > 0 {
		t.Errorf("failed requests: %v", failed)
	}
	// The console's messages up to a last one the test writes: none may be an error.
	get(t, ctx, "mark the console's end", chromedp.Evaluate[any](`console.log("favicon-test-end")`))
	for m, err := range console {
		if err != nil {
			t.Fatal(err)
		}
		if m.Text == "favicon-test-end" {
			break
		}
		if m.Type == chromedp.ConsoleError || m.IsException() {
			t.Errorf("console %s: %s", m.Type, m.Text)
		}
	}
}
