package dashboard

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
)

func statusText(status int) string { return strconv.Itoa(status) + " · " + http.StatusText(status) }

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return strconv.Itoa(n) + " " + word + "s"
}

// Number formatters. Each is total: any float64 — ±Inf, NaN, -0, subnormals, values
// past what an int64 holds — gives a short readable string, and none calls another
// formatter that could call it back. The numbers come from stored data that lift does
// not trust to be in range: a sum of large values overflows to +Inf, and a page must
// still render. NaN shows as a dash, ±Inf as ∞, and magnitudes from bigNumber up in
// scientific notation with three significant digits.

const (
	noNumber = "—"
	// bigNumber is where fixed notation gives way to scientific: past it the digits
	// are noise to a reader, and past 2⁶³ an integer conversion is meaningless.
	bigNumber = 1e15
)

// special formats what fixed notation cannot: NaN, ±Inf and magnitudes of bigNumber
// or more; ok is false for any other number.
func special(x float64) (s string, ok bool) {
	switch {
	case math.IsNaN(x):
		return noNumber, true
	case math.IsInf(x, 1):
		return "∞", true
	case math.IsInf(x, -1):
		return "-∞", true
	case math.Abs(x) >= bigNumber:
		return strconv.FormatFloat(x, 'e', 2, 64), true
	}
	return "", false
}

// fixed is x with prec decimals, without the sign of a result that rounds to zero.
// x must be finite.
func fixed(x float64, prec int) string {
	s := strconv.FormatFloat(x, 'f', prec, 64)
	if strings.Trim(s, "-0.") == "" {
		return strings.TrimPrefix(s, "-")
	}
	return s
}

// grouped writes an integer below bigNumber in magnitude with thousands separators.
func grouped(x float64) string {
	s := strconv.FormatInt(int64(math.Abs(x)), 10)
	var b strings.Builder
	if x < 0 {
		b.WriteByte('-')
	}
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// count formats a number of users or conversions with thousands separators.
func count(x float64) string {
	if s, ok := special(x); ok {
		return s
	}
	if x != math.Trunc(x) {
		return decimal(x) // which never calls count
	}
	return grouped(x)
}

// decimal formats a sum or mean: two decimals, or a whole number with thousands
// separators from 1,000 on.
func decimal(x float64) string {
	if s, ok := special(x); ok {
		return s
	}
	if r := math.Round(x); math.Abs(x) >= 999.995 {
		if s, ok := special(r); ok {
			return s
		}
		return grouped(r)
	}
	return fixed(x, 2)
}

// trimmedDecimal is x with at most two decimals, without trailing zeros.
func trimmedDecimal(x float64) string {
	if s, ok := special(x); ok {
		return s
	}
	return strings.TrimRight(strings.TrimRight(fixed(x, 2), "0"), ".")
}

// percent formats a share in [0,1] as a percentage without needless decimals.
func percent(x float64) string {
	if math.IsNaN(x) {
		return noNumber
	}
	return trimmedDecimal(100*x) + "%"
}

func fixedPercent(x float64) string { return percentWith(x, 2) }

func oneDecimalPercent(x float64) string { return percentWith(x, 1) }

func percentWith(x float64, prec int) string {
	if math.IsNaN(x) {
		return noNumber
	}
	if s, ok := special(100 * x); ok {
		return s + "%"
	}
	return fixed(100*x, prec) + "%"
}

// signedPercent is a lift: one decimal, always signed, with a typographic minus.
func signedPercent(x float64) string {
	if math.IsNaN(x) {
		return noNumber
	}
	s, ok := special(100 * x)
	if !ok {
		s = fixed(100*x, 1)
	}
	switch {
	case s == "0.0":
		return "0.0%"
	case strings.HasPrefix(s, "-"):
		return "−" + s[1:] + "%"
	}
	return "+" + s + "%"
}

func pValue(p float64) string {
	switch {
	case math.IsNaN(p):
		return noNumber
	case p < 0.001:
		return "< 0.001"
	}
	if s, ok := special(p); ok {
		return s
	}
	return fixed(p, 3)
}

// pEquals writes a p-value as a statement: "p = 0.023", or "p < 0.001" where
// pValue writes "< 0.001" (never "p = < 0.001").
func pEquals(p float64) string {
	s := pValue(p)
	if strings.HasPrefix(s, "<") {
		return "p " + s
	}
	return "p = " + s
}

// svgLimit bounds coordinates in a chart's view box: a point that far off is off the
// picture anyway, and the attribute stays a short number.
const svgLimit = 1e6

// svgNum formats an SVG coordinate; NaN is drawn at 0.
func svgNum(v float64) string {
	if math.IsNaN(v) {
		v = 0
	}
	return strconv.FormatFloat(math.Max(-svgLimit, math.Min(svgLimit, v)), 'f', 1, 64)
}

// percentInput is percent without the sign, for form fields.
func percentInput(x float64) string { return strings.TrimSuffix(percent(x), "%") }

// parsePercent reads a form percentage; blank gives def.
func parsePercent(s string, def float64) (float64, error) {
	s = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(s), "%"))
	if s == "" {
		return def, nil
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v < 0 || v > 100 {
		return 0, fmt.Errorf("must be a percentage between 0 and 100")
	}
	return v / 100, nil
}

// textareaRows sizes a textarea to its content, within reason.
func textareaRows(s string, minRows int) string {
	n := strings.Count(s, "\n") + 1
	n = max(minRows, min(n, 16))
	return strconv.Itoa(n)
}
