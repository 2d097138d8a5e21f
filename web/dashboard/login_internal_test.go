package dashboard

import "testing"

// TestSafeNext: after signing in, only paths of this origin are followed. The hostile
// forms are what browsers read as another host (they drop tabs and newlines, trim
// control characters and spaces, read a backslash as a slash) or another scheme;
// next arrives already decoded once from the query or form.
func TestSafeNext(t *testing.T) {
	t.Parallel()
	for _, next := range []string{
		"/\t/evil.example/x", // finding 4: the tab is dropped, leaving //evil.example/x
		"/\n/evil.example", "/\r/evil.example", "\t//evil.example", "/\x00/evil.example", "/\x7f/evil.example",
		" //evil.example", "/ /evil.example",
		"//evil.example", "///evil.example", "//evil.example@lift.local", "//%65vil.example",
		"/\\evil.example", "\\\\evil.example", "/\\/evil.example", "/.\\evil.example", "\\/evil.example",
		"/%2F/evil.example", "/%2f%2fevil.example", "%2F%2Fevil.example",
		"https://evil.example", "https:evil.example", "https:/evil.example", "https:\\\\evil.example",
		"http://lift.local/flags", "javascript:alert(1)", "data:text/html,x", "mailto:a@evil.example",
		"evil.example", "experiments", "", "?next=//evil.example", "#x",
	} {
		if got := safeNext(next); got != "/experiments" {
			t.Errorf("safeNext(%q) = %q, want /experiments", next, got)
		}
	}
	for _, next := range []string{
		"/flags", "/experiments/hero-banner", "/experiments?status=draft",
		"/audit?entity=flag&key=free-shipping", "/experiments/hero-banner#results",
		"/segments/us-mobile?x=%2F%2Fevil.example", "/experiments/a%20b", "/",
	} {
		if got := safeNext(next); got != next {
			t.Errorf("safeNext(%q) = %q, want it kept", next, got)
		}
	}
}
