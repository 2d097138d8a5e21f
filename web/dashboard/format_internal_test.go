package dashboard

import "testing"

func TestWindowInput(t *testing.T) {
	for in, want := range map[string]string{"168h": "7d", "24h0m0s": "1d", "36h": "36h", "10m": "10m", "30m0s": "30m", "90m": "90m",
		"1h30m": "90m", "45s": "45s", "1500ms": "1.5s", "": "", "soon": "soon"} {
		if got := windowInput(in); got != want {
			t.Errorf("windowInput(%q) = %q, want %q", in, got, want)
		}
		if want == "" || want == "soon" {
			continue
		}
		// What the form shows reads back as the same duration.
		back, err := parseWindow(want)
		if err != nil || windowInput(back) != want {
			t.Errorf("parseWindow(%q) = %q, %v", want, back, err)
		}
	}
	for _, bad := range []string{"0d", "-1h", "7 days", "d"} {
		if _, err := parseWindow(bad); err == nil {
			t.Errorf("parseWindow(%q) accepted", bad)
		}
	}
}
