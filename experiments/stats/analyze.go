package stats

import (
	"fmt"
	"math"

	"github.com/liftlab/lift/internal/finite"
)

// Options tune an analysis. The zero value is not valid: start from DefaultOptions.
type Options struct {
	// Level of confidence intervals, such as 0.95.
	Level float64
	// Correction across the comparisons of one analysis (variants × metrics).
	Correction Correction
	// Sequential replaces fixed-horizon intervals and p-values by always-valid ones.
	Sequential       bool
	SequentialTuning float64
}

// DefaultOptions are the engine's: 95% intervals, no correction, fixed horizon.
// (New experiments turn sequential testing on in their document; the engine's own
// default stays the fixed-horizon test the references check.)
var DefaultOptions = Options{Level: 0.95, Correction: NoCorrection, SequentialTuning: DefaultSequentialTuning}

// VariantCounts is one variant of a binomial metric: users exposed and users who
// converted.
type VariantCounts struct {
	Key         string  `json:"key"`
	Users       float64 `json:"users"`
	Conversions float64 `json:"conversions"`
}

// BinomialInput is configured weights and per-variant counts of a conversion metric,
// control first.
type BinomialInput struct {
	Weights  []float64       `json:"weights"`
	Variants []VariantCounts `json:"variants"`
}

// VariantResult is the analysis of one variant on one metric. Value is the rate
// (conversion metrics) or the mean per user (value metrics). Comparison fields are nil
// for the control, and the relative ones also for a treatment whose lift is undefined
// (control at 0, or a treatment at 0 whose relative interval would collapse to a
// point), with Reason saying why. They are all nil, with Reason, when the data cannot
// support a comparison: fewer than 2 users, a metric that does not vary, a variance
// lost to rounding, or aggregates that are not finite numbers (a sum of large values
// overflows to +Inf). An interval computed from such data would look confident and
// mean nothing.
type VariantResult struct {
	Key                 string   `json:"key"`
	Users               float64  `json:"users"`
	Conversions         *float64 `json:"conversions,omitempty"`
	Sum                 *float64 `json:"sum,omitempty"`
	Value               float64  `json:"value"`
	Lift                *float64 `json:"lift"`
	CILow               *float64 `json:"ci_low"`
	CIHigh              *float64 `json:"ci_high"`
	PValue              *float64 `json:"p_value"`
	ChanceToBeatControl *float64 `json:"chance_to_beat_control"`
	AbsoluteLift        *float64 `json:"absolute_lift"`
	AbsoluteCILow       *float64 `json:"absolute_ci_low"`
	AbsoluteCIHigh      *float64 `json:"absolute_ci_high"`
	AbsolutePValue      *float64 `json:"absolute_p_value"`
	ExpectedLoss        *float64 `json:"expected_loss"`
	// DF is the Welch–Satterthwaite degrees of freedom of the fixed-horizon test
	// (nil for sequential intervals, which are normal).
	DF *float64 `json:"df"`
	// Arms of an adaptive allocation (AnalyzeAdaptive) also have the interval of
	// Value itself, their probability of being the best arm, and the plain mean,
	// which the allocation biases; ExpectedLoss is then the loss of choosing this arm
	// over the best one.
	ValueCILow  *float64 `json:"value_ci_low,omitempty"`
	ValueCIHigh *float64 `json:"value_ci_high,omitempty"`
	PBest       *float64 `json:"p_best,omitempty"`
	NaiveValue  *float64 `json:"naive_value,omitempty"`
	Reason      string   `json:"reason,omitempty"`
	// Variance of the value's estimate, for power calculations.
	Variance float64 `json:"-"`
}

// BinomialResult is the analysis of a conversion metric.
type BinomialResult struct {
	Variants  []VariantResult `json:"variants"`
	SRMPValue float64         `json:"srm_p_value"`
	SRM       bool            `json:"srm"`
}

// InputError names the invalid field of an analysis input.
type InputError struct {
	Field, Message string
}

func (e *InputError) Error() string { return e.Field + ": " + e.Message }

// validateWeights checks configured weights against n variants.
func validateWeights(weights []float64, n int) error {
	if n < 2 {
		return &InputError{"variants", "needs at least 2 variants, the control first"}
	}
	if len(weights) != n {
		return &InputError{"weights", fmt.Sprintf("needs one weight per variant (%d), got %d", n, len(weights))}
	}
	sum := 0.0
	for i, w := range weights {
		if !(w >= 0 && w <= 1) {
			return &InputError{fmt.Sprintf("weights[%d]", i), "must be between 0 and 1"}
		}
		sum += w
	}
	if math.Abs(sum-1) > 1e-6 {
		return &InputError{"weights", fmt.Sprintf("must sum to 1, got %g", sum)}
	}
	return nil
}

// Validate checks the input; the error names the field.
func (in *BinomialInput) Validate() error {
	if err := validateWeights(in.Weights, len(in.Variants)); err != nil {
		return err
	}
	for i, v := range in.Variants {
		f := fmt.Sprintf("variants[%d]", i)
		switch {
		case !(v.Users > 0) || math.IsInf(v.Users, 0):
			return &InputError{f + ".users", "must be a positive number"}
		case !(v.Conversions >= 0):
			return &InputError{f + ".conversions", "must be zero or more"}
		case v.Conversions > v.Users:
			return &InputError{f + ".conversions", "must not exceed users"}
		}
	}
	return nil
}

// AnalyzeBinomial analyses a conversion metric per the contract: relative lift with
// a delta-method Welch-t interval and two-sided p-value, chance to beat control from
// Beta(1+x, 1+n−x) posteriors, and a sample-ratio-mismatch test. Options may switch
// to sequential intervals or adjust p-values across the treatments.
func AnalyzeBinomial(in BinomialInput, o Options) (BinomialResult, error) {
	if err := in.Validate(); err != nil {
		return BinomialResult{}, err
	}
	counts := make([]float64, len(in.Variants))
	ests := make([]Estimate, len(in.Variants))
	for i, v := range in.Variants {
		counts[i] = v.Users
		ests[i] = Proportion(v.Users, v.Conversions)
	}
	c := in.Variants[0]
	res := BinomialResult{Variants: compare(ests, Conversion, func(t int) float64 {
		return ChanceToBeatBeta(c.Users, c.Conversions, in.Variants[t].Users, in.Variants[t].Conversions)
	}, o)}
	for i, v := range in.Variants {
		x := v.Conversions
		res.Variants[i].Key, res.Variants[i].Conversions = v.Key, &x
	}
	res.SRMPValue = SRM(counts, in.Weights)
	res.SRM = res.SRMPValue < SRMThreshold
	return res, nil
}

// AnalyzeMeans analyses a value metric (such as revenue per user) from per-variant
// moments, control first: the same delta-method lift with sample variances, and the
// chance to beat control from normal posteriors of the means.
func AnalyzeMeans(keys []string, ms []Moments, o Options) ([]VariantResult, error) {
	if len(ms) < 2 || len(keys) != len(ms) {
		return nil, &InputError{"variants", "needs at least 2 variants with keys, the control first"}
	}
	ests := make([]Estimate, len(ms))
	for i, m := range ms {
		if !(m.N > 0) || math.IsInf(m.N, 0) {
			return nil, &InputError{fmt.Sprintf("variants[%d].users", i), "must be a positive number"}
		}
		ests[i] = m.Estimate()
	}
	res := compare(ests, Value, func(t int) float64 { return ChanceToBeatNormal(ests[0], ests[t]) }, o)
	for i, m := range ms {
		sum := m.Sum
		res[i].Key, res[i].Sum = keys[i], &sum
	}
	return res, nil
}

// Kind is what a metric measures per user.
type Kind string

// The kinds of metrics.
const (
	Conversion Kind = "conversion" // did the user convert: rates
	Value      Kind = "value"      // a value per user, such as revenue: means
)

// Why a variant has no comparison although it has users (VariantResult.Reason).
const (
	ReasonOverflow        = "its values' sum or sum of squares overflows the floating-point range"
	ReasonControlOverflow = "the control's values overflow the floating-point range"
	ReasonOutOfRange      = "the comparison overflows the floating-point range"
	ReasonTooFewUsers     = "fewer than 2 users in this variant or in the control, too few for an interval or a p-value"
	ReasonNoConversionVar = "everyone or nobody converted, in this variant and in the control alike: a rate that does not vary has no interval or p-value"
	ReasonNoValueVar      = "every user has the same value, in this variant and in the control alike: a metric that does not vary has no interval or p-value"
	ReasonVarianceLost    = "the values differ by less than the stored sums resolve (a spread under 1e-5 of the mean): their variance is lost to rounding, so there is no interval or p-value"
	// The relative comparison alone is missing; the absolute one stands.
	ReasonZeroControl   = "the control's mean is 0, so a relative lift is undefined: compare the absolute difference"
	ReasonZeroTreatment = "this variant's mean is 0, where the relative lift's interval collapses to a point: compare the absolute difference"
)

// degenerate says why the data of control c and treatment t support no comparison,
// or "" when they do: fewer than 2 users, a variance lost to rounding, or no
// variance at all between them.
func degenerate(c, t Estimate, kind Kind) string {
	switch {
	case c.N < 2 || t.N < 2:
		return ReasonTooFewUsers
	case c.Lost || t.Lost:
		return ReasonVarianceLost
	case !(c.Var+t.Var > 0):
		if kind == Conversion {
			return ReasonNoConversionVar
		}
		return ReasonNoValueVar
	}
	return ""
}

// compare sets every treatment against the control (index 0). Estimates that are not
// finite, data that support no comparison (degenerate), and comparisons that would
// not be finite get no comparison fields and a Reason.
func compare(ests []Estimate, kind Kind, chance func(treatment int) float64, o Options) []VariantResult {
	out := make([]VariantResult, len(ests))
	ce := ests[0]
	var rel, abs []*float64
	for i, est := range ests {
		vr := VariantResult{Users: est.N, Value: est.Mean, Variance: est.Var}
		switch {
		case !finite.All(est.Mean, est.Var):
			vr.Reason = ReasonOverflow
		case i == 0:
		case !finite.All(ce.Mean, ce.Var):
			vr.Reason = ReasonControlOverflow
		default:
			if why := degenerate(ce, est, kind); why != "" {
				vr.Reason = why
				break
			}
			if !comparison(&vr, ce, est, chance(i), o) {
				vr = VariantResult{Users: est.N, Value: est.Mean, Variance: est.Var, Reason: ReasonOutOfRange}
				break
			}
			abs = append(abs, vr.AbsolutePValue)
			if vr.PValue != nil {
				rel = append(rel, vr.PValue)
			}
		}
		out[i] = vr
	}
	adjust(rel, o.Correction)
	adjust(abs, o.Correction)
	return out
}

// comparison fills vr with treatment t against control c; false when a number comes
// out of range.
func comparison(vr *VariantResult, c, t Estimate, chance float64, o Options) bool {
	n := c.N + t.N
	df := WelchDF(c, t)
	diff, dv := AbsoluteLift(c, t)
	ap, aci := test(diff, dv, n, df, o)
	loss := ExpectedLoss(c, t)
	if !finite.All(diff, dv, ap, aci.Low, aci.High, loss, chance, df) {
		return false
	}
	vr.AbsoluteLift, vr.AbsoluteCILow, vr.AbsoluteCIHigh, vr.AbsolutePValue = &diff, &aci.Low, &aci.High, &ap
	vr.ExpectedLoss, vr.ChanceToBeatControl = &loss, &chance
	if !o.Sequential {
		vr.DF = &df
	}
	r, rv, ok := RelativeLift(c, t)
	switch {
	case !ok:
		vr.Reason = ReasonZeroControl
		return true
	case rv == 0:
		vr.Reason = ReasonZeroTreatment
		return true
	}
	p, ci := test(r, rv, n, df, o)
	if !finite.All(r, rv, p, ci.Low, ci.High) {
		return false
	}
	vr.Lift, vr.CILow, vr.CIHigh, vr.PValue = &r, &ci.Low, &ci.High, &p
	return true
}

// adjust corrects p-values in place.
func adjust(ps []*float64, c Correction) {
	vals := make([]float64, len(ps))
	for i, p := range ps {
		vals[i] = *p
	}
	for i, p := range Adjust(vals, c) {
		*ps[i] = p
	}
}

// test returns the p-value and interval of an estimate: the fixed-horizon Welch t
// test with df degrees of freedom, or the sequential one over n users.
func test(est, variance, n, df float64, o Options) (float64, Interval) {
	if o.Sequential {
		alpha := 1 - o.Level
		return SequentialPValue(est, variance, n, alpha, o.SequentialTuning),
			ConfidenceSequence(est, variance, n, alpha, o.SequentialTuning)
	}
	return TTest(est, variance, df, o.Level)
}

// AnalyzeEstimates compares estimates made elsewhere, such as CUPED-adjusted means,
// control first; the chance to beat control uses normal posteriors.
func AnalyzeEstimates(keys []string, ests []Estimate, kind Kind, o Options) []VariantResult {
	res := compare(ests, kind, func(t int) float64 { return ChanceToBeatNormal(ests[0], ests[t]) }, o)
	for i := range res {
		res[i].Key = keys[i]
	}
	return res
}
