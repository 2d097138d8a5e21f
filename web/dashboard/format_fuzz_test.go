package dashboard

import (
	"bytes"
	"context"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/a-h/templ"

	"github.com/liftlab/lift/bandit"
	"github.com/liftlab/lift/experiments"
	"github.com/liftlab/lift/experiments/stats"
)

// edge are the numbers the fuzz targets start from: the non-finite ones, the largest
// and smallest, negative zero, the sizes that broke formatting (3e15, 1e15), a
// rounding boundary and the largest int64.
var edge = []float64{math.Inf(1), math.Inf(-1), math.NaN(), 1e308, 5e-324, math.Copysign(0, -1), 3e15, 1e15, 999.995, math.MaxInt64}

// readNumber reads back what a formatter wrote: the number, and whether it was in
// scientific notation.
func readNumber(t *testing.T, s string) (x float64, scientific bool) {
	t.Helper()
	r := strings.NewReplacer(",", "", "%", "", "+", "", "−", "-", "< ", "")
	v := r.Replace(s)
	switch v {
	case "—":
		return math.NaN(), false
	case "∞":
		return math.Inf(1), false
	case "-∞":
		return math.Inf(-1), false
	}
	x, err := strconv.ParseFloat(v, 64)
	if err != nil || strings.Contains(v, "Inf") || strings.Contains(v, "NaN") {
		t.Fatalf("%q does not read back as a number", s)
	}
	return x, strings.Contains(v, "e")
}

// FuzzNumberFormats: every number formatter of the dashboard gives, for any float64,
// a short valid UTF-8 string that reads back as the number it shows (within its
// rounding), a dash for NaN and ∞ for infinities; svgNum stays within its limits.
func FuzzNumberFormats(f *testing.F) {
	for _, x := range edge {
		f.Add(x)
	}
	f.Fuzz(func(t *testing.T, x float64) {
		for _, c := range []struct {
			name  string
			s     string
			want  float64 // the number shown
			round float64 // its rounding in fixed notation
		}{
			{"count", count(x), x, 0.5}, {"decimal", decimal(x), x, 0.5}, {"trimmedDecimal", trimmedDecimal(x), x, 0.005},
			{"percent", percent(x), 100 * x, 0.005}, {"fixedPercent", fixedPercent(x), 100 * x, 0.005},
			{"oneDecimalPercent", oneDecimalPercent(x), 100 * x, 0.05}, {"signedPercent", signedPercent(x), 100 * x, 0.05},
			{"pValue", pValue(x), x, 0.0005},
		} {
			if !utf8.ValidString(c.s) || len(c.s) > 24 || c.s == "" {
				t.Fatalf("%s(%v) = %q", c.name, x, c.s)
			}
			got, sci := readNumber(t, c.s)
			switch {
			case math.IsNaN(c.want):
				if !math.IsNaN(got) {
					t.Fatalf("%s(%v) = %q, want a dash", c.name, x, c.s)
				}
			case c.name == "pValue" && c.want < 0.001:
				if c.s != "< 0.001" {
					t.Fatalf("pValue(%v) = %q", x, c.s)
				}
			case math.IsInf(c.want, 0):
				if got != c.want {
					t.Fatalf("%s(%v) = %q, want ∞", c.name, x, c.s)
				}
			default:
				tol := c.round + 1e-9*math.Abs(c.want)
				if sci {
					tol = 0.005 * math.Abs(c.want)
				}
				if math.Abs(got-c.want) > tol {
					t.Fatalf("%s(%v) = %q reads back as %v", c.name, x, c.s, got)
				}
			}
		}
		s := svgNum(x)
		got, err := strconv.ParseFloat(s, 64)
		if err != nil || math.Abs(got) > svgLimit || math.Abs(x) <= svgLimit && math.Abs(got-x) > 0.05+1e-9*math.Abs(x) {
			t.Fatalf("svgNum(%v) = %q", x, s)
		}
		if r := rolloutValue(strconv.FormatFloat(x, 'g', -1, 64)); !(len(r) <= 3) {
			t.Fatalf("rolloutValue(%v) = %q", x, r)
		}
	})
}

// renderHTML writes a component to a string, failing on a rendering error.
func renderHTML(t *testing.T, c templ.Component) string {
	t.Helper()
	var b bytes.Buffer
	if err := c.Render(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// checkPage fails unless a rendered page is valid UTF-8, of a sane size, and shows
// no number the way Go spells what it cannot format (NaN, +Inf).
func checkPage(t *testing.T, html string) {
	t.Helper()
	if !utf8.ValidString(html) || len(html) > 1<<20 || strings.Contains(html, "NaN") || strings.Contains(html, "Inf") {
		i := max(strings.Index(html, "NaN"), strings.Index(html, "Inf"), 0)
		t.Fatalf("page (%d bytes) shows %q", len(html), html[max(0, i-200):min(len(html), i+50)])
	}
}

// FuzzResultsView: the experiment page's results section and the list's headline
// render, for any numbers the results hold, without NaN or Inf on the page, and
// without hanging (the daily chart's ticks once looped forever on an overflowing
// mean).
func FuzzResultsView(f *testing.F) {
	f.Add(1000.0, 20000.0, 0.1, 0.02, 0.3)
	for _, x := range edge {
		f.Add(1000.0, x, x, x, x)
		f.Add(x, 3e15, 0.1, x, 0.5)
	}
	f.Fuzz(func(t *testing.T, users, sum, rate, lift, p float64) {
		lo, hi := lift-p, lift+p
		control := stats.VariantResult{Key: "control", Users: 1000, Sum: ptr(20000.0), Value: 20}
		treat := stats.VariantResult{Key: "treat", Users: users, Sum: &sum, Value: sum / users, Lift: &lift, CILow: &lo, CIHigh: &hi,
			PValue: &p, ChanceToBeatControl: &p, AbsoluteLift: &sum, ExpectedLoss: &p, Reason: "r"}
		conv := []stats.VariantResult{{Key: "control", Users: 1000, Conversions: ptr(100.0), Value: 0.1},
			{Key: "treat", Users: users, Conversions: &sum, Value: rate, Lift: &lift, CILow: &lo, CIHigh: &hi, PValue: &p}}
		e := &experiments.Experiment{Key: "x", Variants: []experiments.Variant{{Key: "control"}, {Key: "treat"}}}
		now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
		res := experiments.Results{Experiment: "x", ComputedAt: now, DataFreshness: &now, Users: users, MultiVariantUsers: sum, SRMPValue: &p, SRM: p < 0.001,
			Metrics: []experiments.MetricResult{
				{Key: "goal", Role: "goal", Event: "purchase", Kind: "value", Window: "168h0m0s", Variants: []stats.VariantResult{control, treat}},
				{Key: "buyers", Role: "guardrail", Event: "purchase", Kind: "conversion", Window: "168h0m0s", Variants: conv}},
			Recommendation: experiments.Recommendation{Decision: "keep_running", Reason: "r", UsersNeeded: &users},
			Daily: []experiments.GroupResult{{Group: "2026-11-30", Variants: []stats.VariantResult{control, treat}},
				{Group: "2026-12-01", Variants: []stats.VariantResult{treat, control}}},
			Segments: []experiments.GroupResult{{Group: "new", Variants: []stats.VariantResult{control, treat}}}}
		page := renderHTML(t, resultsSection(newResultsView(e, res)))
		if !strings.Contains(page, `data-testid="goal-treat-value"`) || !strings.Contains(page, `data-testid="daily-chart"`) {
			t.Fatalf("results section without its table or chart:\n%s", page)
		}
		checkPage(t, page)
		if h, ok := headlineOf(res); ok {
			checkPage(t, renderHTML(t, headlineCell(h)))
		}
		// The conversion goal's chart formats percentages.
		res.Metrics[0], res.Metrics[1] = res.Metrics[1], res.Metrics[0]
		for i := range res.Daily {
			res.Daily[i].Variants = conv
		}
		checkPage(t, renderHTML(t, resultsSection(newResultsView(e, res))))
	})
}

// FuzzBanditView: the bandit section renders, for any numbers a report and the
// results hold, without NaN or Inf on the page.
func FuzzBanditView(f *testing.F) {
	f.Add(0.4, 20.0, 15.0, 25.0, 18.0)
	for _, x := range edge {
		f.Add(x, x, x, x, x)
		f.Add(0.5, 20.0, x, 25.0, x)
	}
	f.Fuzz(func(t *testing.T, weight, mean, low, high, other float64) {
		a := bandit.ArmReport{Variant: "a", Weight: 1 - weight, PBest: 0.5, Posterior: bandit.Summary{Mean: 20, Low: 15, High: 25}, Exposures: 100, NaiveMean: 20}
		b := bandit.ArmReport{Variant: "b", Weight: weight, PBest: weight, Posterior: bandit.Summary{Mean: mean, Low: low, High: high},
			Exposures: other, NaiveMean: mean}
		at := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
		rep := bandit.Report{Experiment: "x", WinnerThreshold: weight, Segments: []bandit.SegmentReport{{Version: 2, ComputedAt: at,
			Arms: []bandit.ArmReport{a, b}, Regret: other, History: []bandit.HistoryPoint{{At: at, Weights: []float64{1 - weight, weight}},
				{At: at.Add(time.Hour), Weights: []float64{mean, low}}}}}}
		res := experiments.Results{Type: "bandit", Metrics: []experiments.MetricResult{{Role: "goal", Variants: []stats.VariantResult{
			{Key: "a", Users: 100, Value: 20, ValueCILow: ptr(15.0), ValueCIHigh: ptr(25.0), PBest: ptr(0.5), ExpectedLoss: ptr(1.0), NaiveValue: ptr(20.0)},
			{Key: "b", Users: other, Value: mean, ValueCILow: &low, ValueCIHigh: &high, PBest: &weight, ExpectedLoss: &other, NaiveValue: &mean},
		}}}, Recommendation: experiments.Recommendation{Decision: "ship", Variant: "b"}}
		for _, kind := range []string{"conversion", "value"} {
			e := &experiments.Experiment{Key: "x", Type: "bandit", Goal: &experiments.Goal{Event: "click", Kind: kind}}
			res.Metrics[0].Kind = kind
			checkPage(t, renderHTML(t, banditSection("x", banditState{View: newBanditView(rep, e, &res)}, true)))
			checkPage(t, renderHTML(t, resultsSection(newResultsView(e, res))))
		}
	})
}

func ptr[T any](v T) *T { return &v }
