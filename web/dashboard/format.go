package dashboard

import (
	"fmt"
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

// percent formats a share in [0,1] as a percentage without needless decimals.
func percent(x float64) string {
	s := strconv.FormatFloat(x*100, 'f', 2, 64)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	return s + "%"
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
