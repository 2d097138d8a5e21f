package main

import (
	"bytes"
	"encoding/json"
	"io"
	"math"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzAnalyze: `lift analyze` either prints valid JSON or fails with a message, for
// any numbers in its input document (±Inf and NaN are not JSON and fail to decode;
// 1e308 users are valid input whose statistics overflow).
func FuzzAnalyze(f *testing.F) {
	f.Add(1000.0, 100.0, 1000.0, 120.0, 0.5, false)
	for _, x := range []float64{math.Inf(1), math.Inf(-1), math.NaN(), 1e308, 5e-324, math.Copysign(0, -1), 3e15, 1e15, 999.995, math.MaxInt64} {
		f.Add(x, 1.0, 1000.0, 120.0, 0.5, false)
		f.Add(x, x, x, x, 0.5, true)
	}
	f.Fuzz(func(t *testing.T, n0, x0, n1, x1, w float64, sequential bool) {
		num := func(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }
		in := `{"weights":[` + num(w) + `,` + num(1-w) + `],"variants":[{"key":"a","users":` + num(n0) + `,"conversions":` + num(x0) +
			`},{"key":"b","users":` + num(n1) + `,"conversions":` + num(x1) + `}]}`
		args := []string{}
		if sequential {
			args = append(args, "--sequential")
		}
		var out bytes.Buffer
		err := analyze(args, strings.NewReader(in), &out, io.Discard)
		if err != nil {
			if err.Error() == "" || !utf8.ValidString(err.Error()) {
				t.Fatalf("error without a message for %s", in)
			}
			return
		}
		if !json.Valid(out.Bytes()) {
			t.Fatalf("%s: invalid JSON %s", in, out.Bytes())
		}
	})
}
