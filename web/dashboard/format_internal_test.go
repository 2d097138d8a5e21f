package dashboard

import (
	"math"
	"testing"
)

func TestWindowInput(t *testing.T) {
	t.Parallel()
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

// TestNumberFormatsAreTotal: every formatter gives a short, readable string for any
// float64. Stored data is not trusted to be in range: a purchase of 3e15 made count
// and decimal call each other until the stack overflowed, which killed the process.
func TestNumberFormatsAreTotal(t *testing.T) {
	t.Parallel()
	inf, nan := math.Inf(1), math.NaN()
	for _, c := range []struct {
		name, got, want string
	}{
		{"count(3e15)", count(3e15), "3.00e+15"},
		{"decimal(3e15)", decimal(3e15), "3.00e+15"},
		{"count(1e15)", count(1e15), "1.00e+15"},
		{"count(999999999999999)", count(999999999999999), "999,999,999,999,999"},
		{"count(MaxInt64)", count(math.MaxInt64), "9.22e+18"},
		{"count(-1234)", count(-1234), "-1,234"},
		{"count(-0)", count(math.Copysign(0, -1)), "0"},
		{"count(1.5)", count(1.5), "1.50"},
		{"count(+Inf)", count(inf), "∞"},
		{"count(-Inf)", count(-inf), "-∞"},
		{"count(NaN)", count(nan), "—"},
		{"decimal(1e308)", decimal(1e308), "1.00e+308"},
		{"decimal(-3e15)", decimal(-3e15), "-3.00e+15"},
		{"decimal(1234.5)", decimal(1234.5), "1,235"},
		{"decimal(999.995)", decimal(999.995), "1,000"},
		{"decimal(999.99)", decimal(999.99), "999.99"},
		{"decimal(5e-324)", decimal(5e-324), "0.00"},
		{"decimal(-0)", decimal(math.Copysign(0, -1)), "0.00"},
		{"decimal(-0.001)", decimal(-0.001), "0.00"},
		{"decimal(+Inf)", decimal(inf), "∞"},
		{"decimal(NaN)", decimal(nan), "—"},
		{"trimmedDecimal(1e308)", trimmedDecimal(1e308), "1.00e+308"},
		{"trimmedDecimal(2.50)", trimmedDecimal(2.5), "2.5"},
		{"trimmedDecimal(NaN)", trimmedDecimal(nan), "—"},
		{"percent(0.125)", percent(0.125), "12.5%"},
		{"percent(1e308)", percent(1e308), "∞%"},
		{"percent(NaN)", percent(nan), "—"},
		{"fixedPercent(3e15)", fixedPercent(3e15), "3.00e+17%"},
		{"fixedPercent(-Inf)", fixedPercent(-inf), "-∞%"},
		{"oneDecimalPercent(NaN)", oneDecimalPercent(nan), "—"},
		{"signedPercent(+Inf)", signedPercent(inf), "+∞%"},
		{"signedPercent(-Inf)", signedPercent(-inf), "−∞%"},
		{"signedPercent(-3e15)", signedPercent(-3e15), "−3.00e+17%"},
		{"signedPercent(NaN)", signedPercent(nan), "—"},
		{"signedPercent(-0)", signedPercent(math.Copysign(0, -1)), "0.0%"},
		{"pValue(NaN)", pValue(nan), "—"},
		{"pValue(1e308)", pValue(1e308), "1.00e+308"},
		{"pValue(-Inf)", pValue(-inf), "< 0.001"},
		{"svgNum(+Inf)", svgNum(inf), "1000000.0"},
		{"svgNum(-1e308)", svgNum(-1e308), "-1000000.0"},
		{"svgNum(NaN)", svgNum(nan), "0.0"},
		{"rolloutValue(1e308)", rolloutValue("1e308"), "100"},
		{"rolloutValue(NaN)", rolloutValue("NaN"), "100"},
		{"rolloutValue(-5)", rolloutValue("-5"), "0"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
}
