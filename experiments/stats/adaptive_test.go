package stats_test

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/liftlab/lift/bandit"
	"github.com/liftlab/lift/experiments/stats"
)

// driftDay is one simulated day of a two-arm bandit: users per day, the weight of
// arm b, and both arms' true conversion rates that day.
type driftDay struct {
	users        int
	weightB      float64
	rateA, rateB float64
}

// simulateDays draws each day's users into the arms by the day's weights and their
// conversions by the day's rates: one period per day, as lift's store keeps them.
func simulateDays(r *rand.Rand, days []driftDay) []stats.Period {
	var ps []stats.Period
	for _, d := range days {
		nb := binomial(r, d.users, d.weightB)
		na := float64(d.users) - nb
		xa, xb := binomial(r, int(na), d.rateA), binomial(r, int(nb), d.rateB)
		ps = append(ps, stats.Period{{N: na, Sum: xa, SumSq: xa}, {N: nb, Sum: xb, SumSq: xb}})
	}
	return ps
}

// TestAdaptiveMovingWeights is the scenario that misleads plain means: a bandit
// splits 50/50 for a week, then sends 90% of users to b, while the conversion rate
// falls by half from the first week to the second (a sale ends). b is 10% better
// every day. b's plain mean, made mostly of second-week users, comes out below a's;
// the period-weighted analysis recovers the true difference over the experiment's
// users, and its 95% intervals — of each arm's mean and of b's lift over a — cover
// the truth 93–97% of the time over 2,000 runs.
func TestAdaptiveMovingWeights(t *testing.T) {
	r := rand.New(rand.NewPCG(19, 20))
	var days []driftDay
	for d := range 14 {
		day := driftDay{users: 1000, weightB: 0.5, rateA: 0.10, rateB: 0.11}
		if d >= 7 {
			day.weightB, day.rateA, day.rateB = 0.9, 0.05, 0.055
		}
		days = append(days, day)
	}
	// The truth: each arm's rate averaged over all the experiment's users.
	var trueA, trueB, all float64
	for _, d := range days {
		trueA += float64(d.users) * d.rateA
		trueB += float64(d.users) * d.rateB
		all += float64(d.users)
	}
	trueA, trueB = trueA/all, trueB/all
	trueLift, trueDiff := trueB/trueA-1, trueB-trueA

	const runs = 2000
	var coveredA, coveredB, coveredLift, coveredDiff, naiveWrong, significant int
	var sumLift, sumNaiveLift float64
	o := stats.DefaultOptions
	for range runs {
		ps := simulateDays(r, days)
		res := stats.AnalyzeAdaptive([]string{"a", "b"}, [][]stats.Period{ps}, stats.Conversion, 0, o)
		a, b := res[0], res[1]
		if a.ValueCILow == nil || b.ValueCILow == nil || b.Lift == nil {
			t.Fatalf("no intervals: %+v %+v", a, b)
		}
		in := func(x float64, lo, hi *float64) bool { return *lo <= x && x <= *hi }
		if in(trueA, a.ValueCILow, a.ValueCIHigh) {
			coveredA++
		}
		if in(trueB, b.ValueCILow, b.ValueCIHigh) {
			coveredB++
		}
		if in(trueLift, b.CILow, b.CIHigh) {
			coveredLift++
		}
		if in(trueDiff, b.AbsoluteCILow, b.AbsoluteCIHigh) {
			coveredDiff++
		}
		if *b.PValue < 0.05 {
			significant++
		}
		naiveLift := *b.NaiveValue / *a.NaiveValue - 1
		if naiveLift < 0 {
			naiveWrong++
		}
		sumLift += *b.Lift
		sumNaiveLift += naiveLift
	}
	rate := func(n int) float64 { return float64(n) / runs }
	t.Logf("true lift %+.4f: mean estimated lift %+.4f, mean plain-means lift %+.4f (wrong sign in %.1f%% of runs)",
		trueLift, sumLift/runs, sumNaiveLift/runs, 100*rate(naiveWrong))
	t.Logf("coverage of the 95%% intervals over %d runs: a's mean %.4f, b's mean %.4f, lift %.4f, difference %.4f; power %.3f",
		runs, rate(coveredA), rate(coveredB), rate(coveredLift), rate(coveredDiff), rate(significant))
	if rate(naiveWrong) < 0.9 {
		t.Errorf("plain means point the wrong way in only %.3f of runs: the scenario does not test what it says", rate(naiveWrong))
	}
	if bias := sumLift/runs - trueLift; math.Abs(bias) > 0.01 {
		t.Errorf("estimated lift biased by %+.4f", bias)
	}
	for name, c := range map[string]int{"a": coveredA, "b": coveredB, "lift": coveredLift, "difference": coveredDiff} {
		if cov := rate(c); cov < 0.93 || cov > 0.97 {
			t.Errorf("coverage of %s: %.4f, want 0.93–0.97", name, cov)
		}
	}
}

// TestAdaptiveAAUnderBandit runs A/A tests (two identical arms) under lift's own
// bandit policy, which moves the weights every day after what it has seen, while the
// conversion rate drifts down and up over two weeks, and reports how often a winner
// would be named, at the end (day 14) and at any daily look from the seventh day on
// (the default minimum runtime): by P(best) ≥ 0.95 alone, from plain means and from
// the period-weighted analysis, and by lift's rule (AdaptiveWinner: P(best) ≥ 0.95
// and the leader ahead in the interval of the difference, always-valid for
// sequential experiments, the default). Two equal arms reach P(best) ≥ 0.95 at a
// single look one time in ten even when everything is exact.
func TestAdaptiveAAUnderBandit(t *testing.T) {
	r := rand.New(rand.NewPCG(23, 24))
	const runs, days, perDay, threshold = 1000, 14, 1000, 0.95
	fixed, seq := stats.DefaultOptions, stats.DefaultOptions
	seq.Sequential = true
	type tally struct{ end, any int }
	var naive, pbest, ruleFixed, ruleSeq tally
	covered := 0
	for run := range runs {
		var ps []stats.Period
		counts := make([]bandit.Counts, 2)
		weights := []float64{0.5, 0.5}
		var seen [4]bool
		var trueSum, users float64
		for d := range days {
			rate := 0.06 + 0.03*math.Sin(float64(d)/3)
			day := simulateDays(r, []driftDay{{users: perDay, weightB: weights[1], rateA: rate, rateB: rate}})
			ps = append(ps, day...)
			trueSum += perDay * rate
			users += perDay
			for k := range 2 {
				counts[k].Exposures += day[0][k].N
				counts[k].Conversions += day[0][k].Sum
			}
			cfg := bandit.DefaultConfig()
			cfg.Seed = uint64(run*days + d)
			res, err := bandit.Weights(counts, cfg)
			if err != nil {
				t.Fatal(err)
			}
			weights = res.Weights
			if d+1 < 7 {
				continue
			}
			outFixed := stats.AnalyzeAdaptive([]string{"a", "b"}, [][]stats.Period{ps}, stats.Conversion, -1, fixed)
			outSeq := stats.AnalyzeAdaptive([]string{"a", "b"}, [][]stats.Period{ps}, stats.Conversion, -1, seq)
			a, b := stats.Proportion(counts[0].Exposures, counts[0].Conversions), stats.Proportion(counts[1].Exposures, counts[1].Conversions)
			plain, _ := stats.ProbBestNormal([]float64{a.Mean, b.Mean}, []float64{math.Sqrt(a.Var), math.Sqrt(b.Var)})
			named := [4]bool{
				plain[0] >= threshold || plain[1] >= threshold,
				outFixed[0].PBest != nil && (*outFixed[0].PBest >= threshold || *outFixed[1].PBest >= threshold),
				stats.AdaptiveWinner(outFixed, threshold, fixed) >= 0,
				stats.AdaptiveWinner(outSeq, threshold, seq) >= 0,
			}
			for i, w := range named {
				seen[i] = seen[i] || w
				if d == days-1 && w {
					[]*tally{&naive, &pbest, &ruleFixed, &ruleSeq}[i].end++
				}
			}
			if truth := trueSum / users; d == days-1 && *outFixed[0].ValueCILow <= truth && truth <= *outFixed[0].ValueCIHigh {
				covered++
			}
		}
		for i, s := range seen {
			if s {
				[]*tally{&naive, &pbest, &ruleFixed, &ruleSeq}[i].any++
			}
		}
	}
	rate := func(n int) float64 { return float64(n) / runs }
	for _, x := range []struct {
		name string
		t    tally
	}{{"P(best) ≥ 0.95 from plain means", naive}, {"P(best) ≥ 0.95, period-weighted", pbest},
		{"lift's rule, fixed horizon", ruleFixed}, {"lift's rule, sequential (default)", ruleSeq}} {
		t.Logf("A/A under the bandit, %d runs, %s: a winner at day 14 in %.3f, at some daily look from day 7 in %.3f", runs, x.name, rate(x.t.end), rate(x.t.any))
	}
	t.Logf("coverage of a's 95%% interval at day 14: %.3f", rate(covered))
	if r := rate(ruleSeq.any); r > 0.08 {
		t.Errorf("lift's rule names a false winner at some daily look in %.3f of A/A runs, want at most 0.08", r)
	}
	if r := rate(ruleFixed.end); r > 0.08 {
		t.Errorf("lift's rule names a false winner at day 14 in %.3f of A/A runs, want at most 0.08", r)
	}
	if rate(pbest.end) >= rate(naive.end) {
		t.Errorf("period weighting should name fewer false winners than plain means: %.3f vs %.3f", rate(pbest.end), rate(naive.end))
	}
}

// TestReferenceAdaptive compares AnalyzeAdaptive with values computed independently
// with SciPy (testdata/make_reference_adaptive.py): period-weighted means, their
// intervals, P(best), expected loss, plain means and, against a control, lifts,
// intervals, p-values and degrees of freedom, all within 1e-6.
func TestReferenceAdaptive(t *testing.T) {
	data, err := os.ReadFile("testdata/reference_adaptive.json")
	if err != nil {
		t.Fatal(err)
	}
	var cases []struct {
		Name    string
		Control int
		Groups  [][][]struct {
			N, Sum float64
			SumSq  float64 `json:"sumsq"`
		}
		Arms []map[string]float64
	}
	if err := json.Unmarshal(data, &cases); err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			var groups [][]stats.Period
			for _, g := range c.Groups {
				var ps []stats.Period
				for _, p := range g {
					var period stats.Period
					for _, m := range p {
						period = append(period, stats.Moments{N: m.N, Sum: m.Sum, SumSq: m.SumSq})
					}
					ps = append(ps, period)
				}
				groups = append(groups, ps)
			}
			keys := make([]string, len(c.Arms))
			for i := range keys {
				keys[i] = fmt.Sprint("arm", i)
			}
			res := stats.AnalyzeAdaptive(keys, groups, stats.Conversion, c.Control, stats.DefaultOptions)
			for i, want := range c.Arms {
				got := res[i]
				value := got.Value
				fields := map[string]*float64{"value": &value, "value_ci_low": got.ValueCILow, "value_ci_high": got.ValueCIHigh,
					"p_best": got.PBest, "expected_loss": got.ExpectedLoss, "naive_value": got.NaiveValue,
					"lift": got.Lift, "ci_low": got.CILow, "ci_high": got.CIHigh, "p_value": got.PValue, "df": got.DF,
					"absolute_lift": got.AbsoluteLift, "absolute_ci_low": got.AbsoluteCILow, "absolute_ci_high": got.AbsoluteCIHigh,
					"absolute_p_value": got.AbsolutePValue}
				for name, g := range fields {
					w, ok := want[name]
					switch {
					case !ok && g != nil:
						t.Errorf("arm %d %s: got %v, want null", i, name, *g)
					case ok && (g == nil || math.Abs(*g-w) > 1e-6):
						t.Errorf("arm %d %s: got %v, want %v ± 1e-6", i, name, deref(g), w)
					}
				}
			}
		})
	}
}

// TestProbBestNormal: three or more arms are integrated numerically; they agree with
// the two-arm closed form when a third arm is far behind, and P(best) sums to 1.
func TestProbBestNormal(t *testing.T) {
	two, loss2 := stats.ProbBestNormal([]float64{0.10, 0.11}, []float64{0.004, 0.001})
	three, loss3 := stats.ProbBestNormal([]float64{0.10, 0.11, -5}, []float64{0.004, 0.001, 0.01})
	for k := range 2 {
		if math.Abs(two[k]-three[k]) > 1e-9 || math.Abs(loss2[k]-loss3[k]) > 1e-9 {
			t.Errorf("arm %d: two arms %v (loss %v), with a hopeless third %v (loss %v)", k, two[k], loss2[k], three[k], loss3[k])
		}
	}
	p, _ := stats.ProbBestNormal([]float64{1, 1.2, 0.9, 1.1}, []float64{0.3, 0.1, 0.5, 0.01})
	if sum := p[0] + p[1] + p[2] + p[3]; math.Abs(sum-1) > 1e-9 {
		t.Errorf("P(best) sums to %v: %v", sum, p)
	}
}

// TestAdaptiveEdges: an arm without users says it has too few (not that it
// overflows), nobody gets a P(best) then, and a period short of users or variation
// merges into the next instead of adding a mean without variance.
func TestAdaptiveEdges(t *testing.T) {
	out := stats.AnalyzeAdaptive([]string{"a", "b"}, [][]stats.Period{{{{N: 100, Sum: 10, SumSq: 10}, {}}}}, stats.Conversion, -1, stats.DefaultOptions)
	if out[1].Reason != stats.ReasonAdaptiveTooFew || out[1].NaiveValue != nil || out[0].PBest != nil || out[0].ValueCILow == nil {
		t.Errorf("an arm without users: %+v / %+v", out[0], out[1])
	}
	// Day 1: b's 3 users all fail to convert; alone it would count b's mean as 0 with
	// no variance. Merged with day 2, b's mean is 1/6 over both days' users.
	days := []stats.Period{
		{{N: 100, Sum: 10, SumSq: 10}, {N: 3}},
		{{N: 100, Sum: 10, SumSq: 10}, {N: 3, Sum: 1, SumSq: 1}},
	}
	out = stats.AnalyzeAdaptive([]string{"a", "b"}, [][]stats.Period{days}, stats.Conversion, -1, stats.DefaultOptions)
	if b := out[1]; math.Abs(b.Value-1.0/6) > 1e-12 || b.ValueCILow == nil {
		t.Errorf("merged days: b %v, interval %v", b.Value, deref(b.ValueCILow))
	}
}
