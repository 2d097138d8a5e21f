package experiments

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/liftlab/lift/experiments/stats"
)

// adjustAll corrects p-values across every treatment of every metric together: the
// relative ones as one family, the absolute ones as another.
func adjustAll(metrics []MetricResult, c stats.Correction) {
	if c == stats.NoCorrection {
		return
	}
	for _, pick := range []func(v *stats.VariantResult) *float64{
		func(v *stats.VariantResult) *float64 { return v.PValue },
		func(v *stats.VariantResult) *float64 { return v.AbsolutePValue },
	} {
		var ps []*float64
		var vals []float64
		for m := range metrics {
			for v := range metrics[m].Variants {
				if p := pick(&metrics[m].Variants[v]); p != nil {
					ps = append(ps, p)
					vals = append(vals, *p)
				}
			}
		}
		for i, adj := range stats.Adjust(vals, c) {
			*ps[i] = adj
		}
	}
}

// minimum is how far the experiment is from the sample and runtime it needs before
// a verdict. The runtime counts from the recorded start, or, for experiments started
// before lift recorded it, from the first day of exposure (firstDay, YYYY-MM-DD).
func minimum(e *Experiment, r *Results, firstDay string) Minimum {
	m := Minimum{Users: e.MinUsers(), Runtime: e.MinRuntime(), SmallestVariant: math.Inf(1), StartedAt: e.StartedAt}
	if m.StartedAt == nil {
		if t, err := time.Parse(time.DateOnly, firstDay); err == nil {
			m.StartedAt = &t
		}
	}
	if m.StartedAt != nil {
		m.Ran = max(0, r.ComputedAt.Sub(*m.StartedAt))
	}
	if len(r.Metrics) > 0 {
		for _, v := range r.Metrics[0].Variants {
			m.SmallestVariant = math.Min(m.SmallestVariant, v.Users)
		}
	}
	if math.IsInf(m.SmallestVariant, 1) {
		m.SmallestVariant = 0
	}
	m.TooEarly = m.SmallestVariant < float64(m.Users) || m.Ran < m.Runtime
	return m
}

// tooEarly is the recommendation while the minimum holds a verdict back.
func tooEarly(m Minimum, what string) Recommendation {
	var short []string
	if m.SmallestVariant < float64(m.Users) {
		short = append(short, fmt.Sprintf("%.0f of %d users in the smallest %s", m.SmallestVariant, m.Users, what))
	}
	if m.Ran < m.Runtime {
		short = append(short, fmt.Sprintf("%s of %s run", roundDuration(m.Ran), roundDuration(m.Runtime)))
	}
	return Recommendation{Decision: "keep_running", TooEarly: true,
		Reason: "too early for a verdict: the sample is too small to trust an effect yet (" + strings.Join(short, ", ") + ")"}
}

// roundDuration writes a duration in days, hours or minutes, whichever reads best.
func roundDuration(d time.Duration) string {
	switch {
	case d >= 48*time.Hour:
		return fmt.Sprintf("%.1f days", d.Hours()/24)
	case d >= 2*time.Hour:
		return fmt.Sprintf("%.0f hours", d.Hours())
	case d >= time.Minute:
		return fmt.Sprintf("%.0f minutes", d.Minutes())
	}
	return fmt.Sprintf("%.0f seconds", d.Seconds())
}

// dataProblem are the reasons for a missing comparison that more users do not cure.
var dataProblem = map[string]bool{stats.ReasonOverflow: true, stats.ReasonControlOverflow: true,
	stats.ReasonOutOfRange: true, stats.ReasonVarianceLost: true}

// recommend says ship, keep running or stop an A/B test, and why:
//   - stop on a sample-ratio mismatch (the assignment is broken, no result is
//     trustworthy; this needs no minimum, it is not a verdict on an effect);
//   - keep running when the goal's stored values cannot be compared (they
//     overflow, or lose their spread to rounding), saying so;
//   - keep running while the minimum sample or runtime is not reached;
//   - stop when a guardrail is significantly harmed, or when every treatment is
//     significantly worse on the goal;
//   - ship the best significant winner on the goal when no guardrail is harmed for it;
//   - otherwise keep running: with the reason when a variant of the goal has no
//     comparison, else with the users still needed for 80% power at the effect
//     observed so far.
func recommend(r *Results, opts stats.Options) Recommendation {
	alpha := 1 - opts.Level
	if r.SRM {
		return Recommendation{Decision: "stop", Reason: fmt.Sprintf("sample ratio mismatch (p = %.2g): users are not split as configured; fix the assignment before trusting any result", *r.SRMPValue)}
	}
	goal := r.Metrics[0]
	// Stored values that overflow or lose their spread will not compare however long
	// the experiment runs: say so rather than "too early".
	for _, v := range goal.Variants {
		if dataProblem[v.Reason] {
			return Recommendation{Decision: "keep_running", Reason: fmt.Sprintf("the goal cannot be compared for %q: %s", v.Key, v.Reason)}
		}
	}
	if r.Minimum.TooEarly {
		return tooEarly(r.Minimum, "variant")
	}
	significant := func(v stats.VariantResult, sign float64) bool {
		return v.PValue != nil && *v.PValue < alpha && v.Lift != nil && sign**v.Lift > 0
	}
	harmed := func(variant int) string {
		for _, m := range r.Metrics[1:] {
			if m.Role == "guardrail" && variant < len(m.Variants) && significant(m.Variants[variant], -1) {
				return m.Key
			}
		}
		return ""
	}
	best, bestLift := -1, math.Inf(-1)
	allWorse := len(goal.Variants) > 1
	for i, v := range goal.Variants[1:] {
		i++
		if g := harmed(i); g != "" {
			return Recommendation{Decision: "stop", Variant: v.Key, Reason: fmt.Sprintf("guardrail %q is significantly harmed by %q", g, v.Key)}
		}
		if significant(v, 1) && *v.Lift > bestLift {
			best, bestLift = i, *v.Lift
		}
		allWorse = allWorse && significant(v, -1)
	}
	if best > 0 {
		return Recommendation{Decision: "ship", Variant: goal.Variants[best].Key,
			Reason: fmt.Sprintf("significant win on the goal (lift %+.1f%%) with no guardrail harmed", 100*bestLift)}
	}
	if allWorse {
		return Recommendation{Decision: "stop", Reason: "every treatment is significantly worse than the control on the goal"}
	}
	for _, v := range goal.Variants {
		if v.Reason != "" {
			return Recommendation{Decision: "keep_running", Reason: fmt.Sprintf("the goal cannot be compared for %q: %s", v.Key, v.Reason)}
		}
	}
	rec := Recommendation{Decision: "keep_running", Reason: "no significant difference on the goal yet"}
	if need, ok := usersNeeded(goal.Variants, alpha); ok {
		rec.UsersNeeded = &need
		rec.Reason = "underpowered: more users are needed for 80% power at the effect observed so far"
	}
	return rec
}

// recommendBandit says whether to declare a bandit's winner, from the analysis valid
// under its moving weights, never from a fixed-allocation test: ship the arm whose
// P(best) reaches the experiment's winner threshold and which is ahead of every other
// arm beyond the interval of the difference (always-valid when the experiment is
// sequential; stats.AdaptiveWinner), once the minimum sample and runtime are reached.
// A bandit per segment needs the same winner in every segment that has users;
// segments with different best arms are what it is for, and it keeps running.
func recommendBandit(e *Experiment, r *Results, opts stats.Options) Recommendation {
	if w := e.Bandit; w != nil && w.Winner != "" {
		return Recommendation{Decision: "ship", Variant: w.Winner, Reason: fmt.Sprintf("%q was declared the winner and is served to everyone", w.Winner)}
	}
	goal := r.Metrics[0].Variants
	for _, v := range goal {
		if dataProblem[v.Reason] {
			return Recommendation{Decision: "keep_running", Reason: fmt.Sprintf("no arm can be named best: %q: %s", v.Key, v.Reason)}
		}
	}
	if r.Minimum.TooEarly {
		return tooEarly(r.Minimum, "arm")
	}
	threshold := e.Bandit.Threshold()
	for _, v := range goal {
		if v.PBest == nil {
			why := v.Reason
			if why == "" {
				why = "some arm has no interval yet"
			}
			return Recommendation{Decision: "keep_running", Reason: fmt.Sprintf("no arm can be named best yet: %q: %s", v.Key, why)}
		}
	}
	leader := 0
	for i, v := range goal {
		if *v.PBest > *goal[leader].PBest {
			leader = i
		}
	}
	if e.Bandit != nil && len(e.Bandit.PerSegment) > 0 {
		var own []string
		common := ""
		for _, s := range r.Segments {
			name := s.Group
			if name == "" {
				name = "users outside the segments"
			}
			w := stats.AdaptiveWinner(s.Variants, threshold, opts)
			if w < 0 {
				return Recommendation{Decision: "keep_running", Reason: fmt.Sprintf("no arm is clearly best yet for %s", name)}
			}
			own = append(own, name+" → "+s.Variants[w].Key)
			if common == "" {
				common = s.Variants[w].Key
			} else if common != s.Variants[w].Key {
				common = "\x00" // they differ
			}
		}
		if common == "\x00" {
			return Recommendation{Decision: "keep_running",
				Reason: "each segment has its own best arm (" + strings.Join(own, ", ") + "): the bandit already serves each segment its best, so keep it running rather than declare one winner for everyone"}
		}
	}
	if w := stats.AdaptiveWinner(goal, threshold, opts); w >= 0 {
		v := goal[w]
		interval := "fixed-horizon"
		if opts.Sequential {
			interval = "always-valid"
		}
		loss := fmt.Sprintf("%.3g per user", *v.ExpectedLoss)
		if r.Metrics[0].Kind == "conversion" {
			loss = fmt.Sprintf("%.2f percentage points of conversion", 100**v.ExpectedLoss)
		}
		return Recommendation{Decision: "ship", Variant: v.Key,
			Reason: fmt.Sprintf("%q is the best arm with probability %.1f%% (threshold %.0f%%) and ahead of every other arm beyond the %s 95%% interval; if it is not in fact best, choosing it costs %s in expectation",
				v.Key, 100**v.PBest, 100*threshold, interval, loss)}
	}
	return Recommendation{Decision: "keep_running",
		Reason: fmt.Sprintf("no arm is clearly best yet: %q leads with P(best) %.1f%% (a winner needs %.0f%% and a lead beyond the interval)", goal[leader].Key, 100**goal[leader].PBest, 100*threshold)}
}

// usersNeeded estimates the additional users (all variants together) needed for 80%
// power at the largest observed absolute effect, with a two-sided test at alpha:
// n per variant = (z_{1−α/2} + z_{0.8})² · (σ_c² + σ_t²) / δ², where σ² is the per-user
// variance (the estimate's variance times its users).
func usersNeeded(vs []stats.VariantResult, alpha float64) (float64, bool) {
	if len(vs) < 2 || vs[0].Users == 0 {
		return 0, false
	}
	c := vs[0]
	best := -1.0
	for _, t := range vs[1:] {
		if t.Users == 0 || t.AbsoluteLift == nil || *t.AbsoluteLift == 0 {
			continue
		}
		z := stats.NormalQuantile(1-alpha/2) + stats.NormalQuantile(0.8)
		perVariant := z * z * (c.Variance*c.Users + t.Variance*t.Users) / (*t.AbsoluteLift * *t.AbsoluteLift)
		if perVariant > best {
			best = perVariant
		}
	}
	if best < 0 {
		return 0, false
	}
	total := 0.0
	for _, v := range vs {
		total += math.Max(0, best-v.Users)
	}
	if math.IsNaN(total) {
		return 0, false
	}
	return math.Min(math.Ceil(total), maxUsersNeeded), true
}
