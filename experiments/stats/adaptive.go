package stats

import (
	"math"
	"slices"

	"gonum.org/v1/gonum/integrate/quad"

	"github.com/liftlab/lift/internal/finite"
)

// Adaptive allocation (bandits). A bandit changes its weights as it learns, and
// whoever comes later is mixed differently into the arms than whoever came earlier:
// when the metric drifts over time (a sale ends, the season turns), an arm that got
// most of its users late has a plain mean from a different population than an arm
// that got them early, and plain means can point the wrong way. Within a period of
// constant weights, though, the arms are a randomized experiment. AnalyzeAdaptive
// therefore weighs each arm's mean within a period by the period's share of all
// users, as GrowthBook's bandits do, so that every arm is estimated over the same
// mix of periods: m_k = Σ_s w_s·ȳ_{s,k} with w_s = N_s/N, and its variance
// Σ_s w_s²·s²_{s,k}/n_{s,k}, with Welch–Satterthwaite degrees of freedom over the
// periods' terms.

// Period is one period's aggregates per arm, in the order of the arms.
type Period []Moments

// minPeriodUsers is how many users every arm needs in a period for the period to
// stand alone: a within-period variance needs 2, and it must not be 0 (a starved arm
// whose few users of the day all failed to convert would otherwise add a mean of 0
// and no variance, the same mistake as the normal interval's on small samples; in
// simulated A/A bandits it took the coverage of 95% intervals down to 91%). A
// period short of it is merged with the periods after it (the last ones with the
// one before), which costs a little bias if the weights moved in between and the
// metric drifted, and nothing else.
const minPeriodUsers = 2

// mergePeriods merges consecutive periods until every arm has minPeriodUsers and a
// variance above 0.
func mergePeriods(ps []Period, arms int) []Period {
	var out []Period
	var cur Period
	enough := func(p Period) bool {
		for _, m := range p {
			if v, _ := m.Variance(); m.N < minPeriodUsers || !(v > 0) {
				return false
			}
		}
		return true
	}
	add := func(into, p Period) Period {
		if into == nil {
			into = make(Period, arms)
		}
		for k := range arms {
			if k < len(p) {
				into[k].N += p[k].N
				into[k].Sum += p[k].Sum
				into[k].SumSq += p[k].SumSq
			}
		}
		return into
	}
	for _, p := range ps {
		cur = add(cur, p)
		if enough(cur) {
			out = append(out, cur)
			cur = nil
		}
	}
	if cur != nil {
		if len(out) == 0 {
			return []Period{cur}
		}
		out[len(out)-1] = add(out[len(out)-1], cur)
	}
	return out
}

// ReasonAdaptiveTooFew is why an arm of an adaptive analysis has no interval.
const ReasonAdaptiveTooFew = "fewer than 2 users in this arm, too few for an interval"

// AnalyzeAdaptive analyses arms allocated adaptively. groups holds, for each group
// of users with an allocation of its own (a bandit segment), its periods of (near)
// constant weights in time order; lift uses days of first exposure. Every arm gets
// its period-weighted mean as Value (NaiveValue is the plain mean, biased under
// drift), the interval of that mean, P(best) and the expected loss of choosing it
// over the best arm (normal posteriors of the means), unless some arm's data
// support no interval (Reason says why). With a control (index ≥ 0; −1 for none),
// the other arms are also compared with it as AnalyzeMeans does, from the weighted
// means. Users, Conversions and Sum stay the observed totals.
func AnalyzeAdaptive(keys []string, groups [][]Period, kind Kind, control int, o Options) []VariantResult {
	arms := len(keys)
	var periods []Period
	for _, g := range groups {
		periods = append(periods, mergePeriods(g, arms)...)
	}
	total := 0.0
	naive := make(Period, arms)
	for _, p := range periods {
		for k, m := range p {
			total += m.N
			naive[k].N += m.N
			naive[k].Sum += m.Sum
			naive[k].SumSq += m.SumSq
		}
	}
	ests := make([]Estimate, arms)
	terms := make([][]dfTerm, arms)
	for k := range arms {
		ests[k] = Estimate{N: naive[k].N}
		for _, p := range periods {
			m := p[k]
			if m.N == 0 {
				continue
			}
			ns := 0.0
			for _, a := range p {
				ns += a.N
			}
			w := ns / total
			v, resolved := m.Variance()
			ests[k].Mean += w * m.Sum / m.N
			c := w * w * v / m.N
			ests[k].Var += c
			ests[k].Lost = ests[k].Lost || !resolved
			terms[k] = append(terms[k], dfTerm{c, m.N})
		}
	}
	out := make([]VariantResult, arms)
	for k, e := range ests {
		vr := VariantResult{Key: keys[k], Users: e.N, Value: e.Mean, Variance: e.Var}
		nv := naive[k].Sum / naive[k].N
		if e.N > 0 {
			vr.NaiveValue = &nv
		}
		switch {
		case e.N < minPeriodUsers:
			vr.Reason = ReasonAdaptiveTooFew
		case !finite.All(e.Mean, e.Var, nv):
			vr.Reason = ReasonOverflow
		case e.Lost:
			vr.Reason = ReasonVarianceLost
		case !(e.Var > 0):
			vr.Reason = map[Kind]string{Conversion: ReasonNoConversionVar, Value: ReasonNoValueVar}[kind]
		default:
			_, ci := test(e.Mean, e.Var, e.N, satterthwaite(terms[k]), o)
			if finite.All(ci.Low, ci.High) {
				vr.ValueCILow, vr.ValueCIHigh = &ci.Low, &ci.High
			}
		}
		out[k] = vr
	}
	bestOf(out, ests)
	if control >= 0 && control < arms {
		compareAdaptive(out, ests, terms, kind, control, o)
	}
	return out
}

// dfTerm is one period's part of an estimate's variance, with its users.
type dfTerm struct{ c, n float64 }

// satterthwaite is the degrees of freedom of a sum of variance terms:
// (Σc)² / Σ c²/(n − 1).
func satterthwaite(ts ...[]dfTerm) float64 {
	sum, den := 0.0, 0.0
	for _, t := range ts {
		for _, x := range t {
			sum += x.c
			if x.n > 1 {
				den += x.c * x.c / (x.n - 1)
			}
		}
	}
	if den == 0 {
		return math.Inf(1)
	}
	return sum * sum / den
}

// bestOf sets every arm's P(best) and expected loss when every arm has an interval.
func bestOf(out []VariantResult, ests []Estimate) {
	means := make([]float64, len(ests))
	sds := make([]float64, len(ests))
	for k, e := range ests {
		if out[k].ValueCILow == nil || len(ests) < 2 {
			return
		}
		means[k], sds[k] = e.Mean, math.Sqrt(e.Var)
	}
	pbest, loss := ProbBestNormal(means, sds)
	for k := range out {
		if finite.All(pbest[k], loss[k]) {
			out[k].PBest, out[k].ExpectedLoss = &pbest[k], &loss[k]
		}
	}
}

// compareAdaptive compares every arm with the control's weighted mean, as compare
// does for fixed allocations (the degrees of freedom from both arms' period terms).
func compareAdaptive(out []VariantResult, ests []Estimate, terms [][]dfTerm, kind Kind, control int, o Options) {
	var rel, abs []*float64
	c := ests[control]
	for k, t := range ests {
		vr := &out[k]
		if k == control || vr.Reason != "" {
			continue
		}
		if out[control].Reason != "" {
			vr.Reason = "the control has no interval: " + out[control].Reason
			continue
		}
		n := c.N + t.N
		df := satterthwaite(terms[control], terms[k])
		diff, dv := AbsoluteLift(c, t)
		ap, aci := test(diff, dv, n, df, o)
		chance := ChanceToBeatNormal(c, t)
		if !finite.All(diff, dv, ap, aci.Low, aci.High, chance) {
			vr.Reason = ReasonOutOfRange
			continue
		}
		vr.AbsoluteLift, vr.AbsoluteCILow, vr.AbsoluteCIHigh, vr.AbsolutePValue, vr.ChanceToBeatControl = &diff, &aci.Low, &aci.High, &ap, &chance
		abs = append(abs, vr.AbsolutePValue)
		if !o.Sequential {
			vr.DF = &df
		}
		r, rv, ok := RelativeLift(c, t)
		switch {
		case !ok:
			vr.Reason = ReasonZeroControl
			continue
		case rv == 0:
			vr.Reason = ReasonZeroTreatment
			continue
		}
		p, ci := test(r, rv, n, df, o)
		if finite.All(r, p, ci.Low, ci.High) {
			vr.Lift, vr.CILow, vr.CIHigh, vr.PValue = &r, &ci.Low, &ci.High, &p
			rel = append(rel, vr.PValue)
		}
	}
	adjust(rel, o.Correction)
	adjust(abs, o.Correction)
}

// ProbBestNormal returns, for arms whose means are normal with the given means and
// standard deviations (all positive), each arm's probability of having the highest
// mean, P(best_k) = ∫ φ_k(x) Π_{j≠k} Φ_j(x) dx, and its expected loss
// E[max_j μ_j] − m_k, the mean one gives up by choosing arm k over whichever is
// best. Two arms have closed forms; more are integrated numerically with
// Gauss–Legendre over pieces one standard deviation of some arm wide, so that every
// arm's CDF is smooth within each piece however different their widths: the same
// estimates always give the same answer, to about 1e-10.
func ProbBestNormal(means, sds []float64) (pbest, loss []float64) {
	n := len(means)
	pbest, loss = make([]float64, n), make([]float64, n)
	if n == 2 {
		s := math.Hypot(sds[0], sds[1])
		d := means[0] - means[1]
		pbest[0] = stdNormal.CDF(d / s)
		pbest[1] = stdNormal.CDF(-d / s)
		// E[max(0, μ_1 − μ_0)] and E[max(0, μ_0 − μ_1)].
		loss[0] = s*stdNormal.Prob(d/s) - d*stdNormal.CDF(-d/s)
		loss[1] = s*stdNormal.Prob(d/s) + d*stdNormal.CDF(d/s)
		return pbest, loss
	}
	// Breakpoints every standard deviation within 9 of every arm's mean.
	var cuts []float64
	for j := range n {
		for i := -9; i <= 9; i++ {
			cuts = append(cuts, means[j]+float64(i)*sds[j])
		}
	}
	slices.Sort(cuts)
	// E[max] is integrated around ref so that a small loss next to large means
	// does not vanish in the subtraction.
	ref := means[0]
	eMax := 0.0
	for k := range n {
		density := func(x float64) float64 {
			z := (x - means[k]) / sds[k]
			f := math.Exp(-z*z/2) / (sds[k] * math.Sqrt(2*math.Pi))
			for j := range n {
				if j != k {
					f *= stdNormal.CDF((x - means[j]) / sds[j])
				}
			}
			return f
		}
		lo, hi := means[k]-9*sds[k], means[k]+9*sds[k]
		a := lo
		for _, c := range append(cuts, hi) {
			if c <= a || c > hi {
				continue
			}
			pbest[k] += quad.Fixed(density, a, c, 20, quad.Legendre{}, 0)
			eMax += quad.Fixed(func(x float64) float64 { return (x - ref) * density(x) }, a, c, 20, quad.Legendre{}, 0)
			a = c
		}
	}
	for k := range n {
		loss[k] = math.Max(0, eMax-(means[k]-ref))
		pbest[k] = math.Min(1, math.Max(0, pbest[k]))
	}
	return pbest, loss
}

// AdaptiveWinner is the arm an adaptive analysis recommends declaring the winner, or
// −1: the arm whose P(best) reaches threshold and which Leads.
func AdaptiveWinner(out []VariantResult, threshold float64, o Options) int {
	for k, v := range out {
		if v.PBest != nil && *v.PBest >= threshold && Leads(out, k, o) {
			return k
		}
	}
	return -1
}

// Leads reports whether arm k of an adaptive analysis is ahead of every other arm
// beyond doubt at o's level: the interval of its difference to each of them — always
// valid under o.Sequential, fixed-horizon otherwise — lies above 0. A P(best) near 1
// at one look is not that: two equal arms reach P(best) ≥ 0.95 one time in ten, and
// whoever looks every day sees it far more often.
func Leads(out []VariantResult, k int, o Options) bool {
	lead := out[k]
	if lead.ValueCILow == nil {
		return false
	}
	for j, v := range out {
		if j == k {
			continue
		}
		if v.ValueCILow == nil {
			return false
		}
		diff, variance, n := lead.Value-v.Value, lead.Variance+v.Variance, lead.Users+v.Users
		var low float64
		if o.Sequential {
			low = ConfidenceSequence(diff, variance, n, 1-o.Level, o.SequentialTuning).Low
		} else {
			_, ci := ZTest(diff, variance, o.Level)
			low = ci.Low
		}
		if !(low > 0) {
			return false
		}
	}
	return true
}
