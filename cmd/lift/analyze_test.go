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

// analyzedVariant is one variant of what `lift analyze` prints, as the tests read it.
type analyzedVariant struct {
	Key                 string
	Value               float64
	Lift                *float64
	PValue              *float64 `json:"p_value"`
	CILow               *float64 `json:"ci_low"`
	CIHigh              *float64 `json:"ci_high"`
	DF                  *float64 `json:"df"`
	AbsolutePValue      *float64 `json:"absolute_p_value"`
	ChanceToBeatControl *float64 `json:"chance_to_beat_control"`
	ExpectedLoss        *float64 `json:"expected_loss"`
	Reason              string
}

type analyzed struct {
	Variants []analyzedVariant
	SRM      *bool
	CUPED    bool    `json:"cuped"`
	Theta    float64 `json:"cuped_theta"`
}

func analyzeJSON(t *testing.T, in string, args ...string) analyzed {
	t.Helper()
	var out bytes.Buffer
	if err := analyze(args, strings.NewReader(in), &out, io.Discard); err != nil {
		t.Fatalf("lift analyze %v: %v", args, err)
	}
	var a analyzed
	if err := json.Unmarshal(out.Bytes(), &a); err != nil {
		t.Fatalf("%v\n%s", err, out.Bytes())
	}
	return a
}

// TestAnalyzeValues: `lift analyze` takes value metrics ({"key","users","sum",
// "sum_squares"}) beside conversions, with the same output fields; Welch's t with
// the Welch–Satterthwaite degrees of freedom; a negative control mean keeps the
// lift's sign; CUPED's pre-exposure sums adjust the estimates; --sequential widens
// the interval; and bad input names the field.
func TestAnalyzeValues(t *testing.T) {
	t.Parallel()
	// Control: 10 users with values 1..10 (sum 55, Σy² 385); treatment: 10 users
	// with 3..12 (sum 75, Σy² 645). Both have s² = 55/6, so the difference 2 has
	// variance 2·(55/6)/10 and df = 18. SciPy: 2·t.sf(2/√(11/6), 18) = 0.156932196 for
	// the difference; the relative lift 2/5.5 with its delta-method variance
	// (55/6/10)·(1/5.5² + 7.5²/5.5⁴) gives 0.232593459.
	in := `{"weights":[0.5,0.5],"variants":[{"key":"control","users":10,"sum":55,"sum_squares":385},{"key":"new","users":10,"sum":75,"sum_squares":645}]}`
	a := analyzeJSON(t, in)
	v := a.Variants[1]
	if v.DF == nil || math.Abs(*v.DF-18) > 1e-9 || math.Abs(*v.Lift-2/5.5) > 1e-12 || v.ChanceToBeatControl == nil || a.SRM == nil {
		t.Fatalf("value metric: %+v", a)
	}
	if math.Abs(*v.AbsolutePValue-0.156932196) > 1e-6 || math.Abs(*v.PValue-0.232593459) > 1e-6 {
		t.Errorf("p-values: absolute %v, relative %v", *v.AbsolutePValue, *v.PValue)
	}
	seq := analyzeJSON(t, in, "--sequential")
	if s := seq.Variants[1]; s.CILow == nil || *s.CILow >= *v.CILow || s.DF != nil {
		t.Errorf("--sequential: interval from %v (fixed %v), df %v", deref(s.CILow), *v.CILow, deref(s.DF))
	}

	// Net refunds: −0.5 → −0.2 per user is an improvement.
	refunds := analyzeJSON(t, `{"weights":[0.5,0.5],"variants":[{"key":"c","users":4000,"sum":-2000,"sum_squares":16000},{"key":"t","users":4000,"sum":-800,"sum_squares":16000}]}`)
	if l := refunds.Variants[1].Lift; l == nil || math.Abs(*l-0.6) > 1e-9 || *refunds.Variants[1].ChanceToBeatControl < 0.99 {
		t.Errorf("net refunds: %+v", refunds.Variants[1])
	}

	// CUPED: the pre-exposure value explains most of the outcome.
	cuped := analyzeJSON(t, `{"weights":[0.5,0.5],"variants":[
		{"key":"c","users":4,"sum":10,"sum_squares":30,"pre_sum":8,"pre_sum_squares":20,"sum_products":24},
		{"key":"t","users":4,"sum":14,"sum_squares":54,"pre_sum":8,"pre_sum_squares":20,"sum_products":32}]}`)
	if !cuped.CUPED || cuped.Theta == 0 || cuped.Variants[1].Lift == nil {
		t.Errorf("CUPED: %+v", cuped)
	}

	for _, c := range []struct{ in, field string }{
		{`{"weights":[0.5,0.5],"variants":[{"key":"a","users":10,"sum":5},{"key":"b","users":10,"sum":5,"sum_squares":5}]}`, "variants[0].sum_squares"},
		{`{"weights":[0.5,0.5],"variants":[{"key":"a","users":10,"sum":50,"sum_squares":5},{"key":"b","users":10,"sum":5,"sum_squares":5}]}`, "variants[0].sum_squares"},
		{`{"weights":[0.5,0.5],"variants":[{"key":"a","users":10,"sum":5,"sum_squares":5},{"key":"b","users":10,"conversions":3}]}`, "variants[1].conversions"},
		{`{"weights":[0.5,0.5],"variants":[{"key":"a","users":10,"conversions":3,"pre_sum":1},{"key":"b","users":10,"conversions":3}]}`, "variants[0].pre_sum_squares"},
	} {
		err := analyze(nil, strings.NewReader(c.in), io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), c.field) {
			t.Errorf("%s: error %v, want one naming %s", c.in, err, c.field)
		}
	}
}

// TestAnalyzeDegenerate: the cases through `lift analyze`: one user per arm,
// a revenue that does not vary, values around 1e12 whose spread the sums lost —
// each without interval, p-value or chance, and with the reason.
func TestAnalyzeDegenerate(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ name, in, reason string }{
		{"one user per arm", `{"weights":[0.5,0.5],"variants":[{"key":"a","users":1,"conversions":1},{"key":"b","users":1,"conversions":0}]}`, "fewer than 2 users"},
		{"revenue that does not vary", `{"weights":[0.5,0.5],"variants":[{"key":"a","users":1000,"sum":10000,"sum_squares":100000},{"key":"b","users":1000,"sum":11000,"sum_squares":121000}]}`, "does not vary"},
		{"everyone converts", `{"weights":[0.5,0.5],"variants":[{"key":"a","users":50,"conversions":50},{"key":"b","users":50,"conversions":50}]}`, "everyone or nobody converted"},
		// 1,000 users at 1e12 + 0..3 each: Σy = 1e15 + 1500, Σy² = 1e27 + 3e15 + 3500.
		{"values around 1e12", `{"weights":[0.5,0.5],"variants":[{"key":"a","users":1000,"sum":1000000000001500,"sum_squares":1.000000000003e27},{"key":"b","users":1000,"sum":1000000000002500,"sum_squares":1.000000000005e27}]}`, "lost to rounding"},
	} {
		t.Run(c.name, func(t *testing.T) {
			v := analyzeJSON(t, c.in).Variants[1]
			if v.Lift != nil || v.PValue != nil || v.CILow != nil || v.ChanceToBeatControl != nil || v.ExpectedLoss != nil || !strings.Contains(v.Reason, c.reason) {
				t.Errorf("got %+v, want no comparison and a reason with %q", v, c.reason)
			}
		})
	}
}
