package main

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestPrivacyPageEndToEnd: in a real browser, an admin finds the privacy settings
// in the navigation, sees every table's retention and changes one.
func TestPrivacyPageEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("drives a browser")
	}
	f := newFixture(t)
	p := f.start(t)
	const pw = "privacy page password"
	runCLI(t, f.env, pw+"\n", "users", "create", "--email", "dpo@example.com", "--role", "admin")
	// Tables are listed once they hold rows: store one event.
	f.client.want(202, "POST", "/v1/events", `{"events":[{"type":"click","user_id":"u1"}]}`, nil)
	pf := &privacyFixture{fixture: f}
	pf.ch = openFixtureClickHouse(t, f)
	eventually(t, 30*time.Second, func() bool { return pf.count(t, "SELECT count() FROM events") == 1 })

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
}
