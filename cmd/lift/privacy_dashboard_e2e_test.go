package main

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/liftlab/lift/internal/testenv"
)

// TestPrivacyPageEndToEnd: in a real browser, an admin finds the privacy settings
// in the navigation, sees every table's retention and changes one, looks a user up
// and erases them with the linked id a client key made, once ticked.
func TestPrivacyPageEndToEnd(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("drives a browser")
	}
	f := newFixture(t)
	p := f.start(t)
	const pw = "privacy page password"
	runCLI(t, f.env, pw+"\n", "users", "create", "--email", "dpo@example.com", "--role", "admin")
	// Tables are listed once they hold rows: store one event.
	f.client.want(202, "POST", "/v1/events", `{"events":[{"type":"click","user_id":"u1"},
		{"type":"$identify","user_id":"u1","properties":{"anonymous_id":"a1"}}]}`, nil)
	pf := &privacyFixture{fixture: f}
	pf.ch = openFixtureClickHouse(t, f)
	testenv.Eventually(t, 30*time.Second, "the two events in ClickHouse", func() bool { return pf.count(t, "SELECT count() FROM events") == 2 })

	ctx := newBrowser(t)
	loginAs(t, ctx, p.url, "dpo@example.com", pw)
	run1(t, ctx, "open the privacy page from the navigation",
		chromedp.Click(css(`nav a[href="/settings/privacy"]`)),
		chromedp.WaitVisible(byID("retention-events")),
	)
	text := get(t, ctx, "page text", chromedp.Text(byID("retention")))
	if !strings.Contains(text, "13 months") || !strings.Contains(text, "drops partitions") {
		t.Errorf("retention section: %s", text)
	}
	run1(t, ctx, "keep events for 6 months",
		chromedp.SetValue(byID("months-events"), "6"),
		chromedp.Click(byID("save-events")),
		chromedp.WaitVisible(byID("retention-saved")),
	)
	if v := get(t, ctx, "months", chromedp.Value(byID("months-events"))); v != "6" {
		t.Errorf("months after saving: %q", v)
	}
	newScreenshots(t).take(ctx, "privacy")
	var o struct {
		Tables []struct {
			Table   string
			Months  int
			Default bool
		}
	}
	f.server.want(200, "GET", "/api/v1/retention", "", &o)
	for _, tr := range o.Tables {
		if tr.Table == "events" && (tr.Months != 6 || tr.Default) {
			t.Errorf("events retention via the API: %+v", tr)
		}
	}

	run1(t, ctx, "look up u1",
		chromedp.SetValue(byID("erase-user"), "u1"),
		chromedp.Click(byID("erase-lookup")),
		chromedp.WaitVisible(byID("include-a1")),
	)
	// The page is swapped in by htmx: tick the box once the swap has settled, or
	// the click may land on the element being replaced.
	testenv.Eventually(t, 10*time.Second, "the htmx swap to settle", func() bool {
		return get(t, ctx, "settled", chromedp.Evaluate[bool](`document.querySelector('.htmx-request, .htmx-swapping, .htmx-settling') === null`))
	})
	run1(t, ctx, "tick a1", chromedp.Click(byID("include-a1")))
	if !get(t, ctx, "ticked", chromedp.Evaluate[bool](`document.querySelector('[data-testid="include-a1"]').checked`)) {
		t.Fatal("a1 is not ticked after the click")
	}
	run1(t, ctx, "erase u1 with the linked id a1",
		chromedp.Click(byID("erase-submit")),
		chromedp.WaitVisible(byID("erase-started")),
	)
	var jobs struct {
		Items []struct {
			ConfirmedLinks []string `json:"confirmed_links"`
		}
	}
	f.server.want(200, "GET", "/api/v1/erasures", "", &jobs)
	if len(jobs.Items) != 1 || len(jobs.Items[0].ConfirmedLinks) != 1 {
		t.Errorf("erasure jobs %+v", jobs.Items)
	}
}
