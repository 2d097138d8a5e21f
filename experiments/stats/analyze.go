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

// DefaultOptions are the contract's: 95% intervals, no correction, fixed horizon.
var DefaultOptions = Options{Level: 0.95, Correction: NoCorrection, SequentialTuning: DefaultSequentialTuning}

// VariantCounts is one variant of a binomial metric: users exposed and users who
// converted.
type VariantCounts struct {
	Key         string  `json:"key"`
	Users       float64 `json:"users"`
	Conversions float64 `json:"conversions"`
}

// BinomialInput is what `lift analyze` reads: configured weights and per-variant
// counts, control first.
type BinomialInput struct {
	Weights  []float64       `json:"weights"`
	Variants []VariantCounts `json:"variants"`
}

// VariantResult is the analysis of one variant on one metric. Value is the rate
// (conversion metrics) or the mean per user (value metrics). Comparison fields are nil
// for the control, and the relative ones also for a treatment whose lift is undefined
// (control at 0). They are also nil, with Reason saying why, when the aggregates are
// not finite numbers (a sum of large values overflows to +Inf) or the comparison
// would not be: an interval computed from them would look confident and mean nothing.
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
	ExpectedLoss        *float64 `json:"expected_loss"`
	Reason              string   `json:"reason,omitempty"`
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

// Validate checks the input; the error names the field.
func (in *BinomialInput) Validate() error {
	if len(in.Variants) < 2 {
		return &InputError{"variants", "needs at least 2 variants, the control first"}
	}
	if len(in.Weights) != len(in.Variants) {
		return &InputError{"weights", fmt.Sprintf("needs one weight per variant (%d), got %d", len(in.Variants), len(in.Weights))}
	}
	sum := 0.0
	for i, w := range in.Weights {
		if !(w >= 0 && w <= 1) {
			return &InputError{fmt.Sprintf("weights[%d]", i), "must be between 0 and 1"}
		}
		sum += w
	}
	if math.Abs(sum-1) > 1e-6 {
		return &InputError{"weights", fmt.Sprintf("must sum to 1, got %g", sum)}
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
// a delta-method normal interval and two-sided p-value, chance to beat control from
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
	res := BinomialResult{Variants: compare(ests, counts, func(t int) float64 {
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
	counts := make([]float64, len(ms))
	for i, m := range ms {
		if !(m.N > 0) || math.IsInf(m.N, 0) {
			return nil, &InputError{fmt.Sprintf("variants[%d].users", i), "must be a positive number"}
		}
		ests[i], counts[i] = m.Estimate(), m.N
	}
	res := compare(ests, counts, func(t int) float64 { return ChanceToBeatNormal(ests[0], ests[t]) }, o)
	for i, m := range ms {
		sum := m.Sum
		res[i].Key, res[i].Sum = keys[i], &sum
	}
	return res, nil
}

// Why a variant has no comparison although it has users (VariantResult.Reason).
const (
	ReasonOverflow        = "its values' sum or sum of squares overflows the floating-point range"
	ReasonControlOverflow = "the control's values overflow the floating-point range"
	ReasonOutOfRange      = "the comparison overflows the floating-point range"
)

// compare sets every treatment against the control (index 0). Estimates that are not
// finite, or comparisons that would not be, get no comparison fields and a Reason;
// the stored data behind them is not trusted to be in range.
func compare(ests []Estimate, users []float64, chance func(treatment int) float64, o Options) []VariantResult {
	out := make([]VariantResult, len(ests))
	ce := ests[0]
	var pvals []float64
	var pidx []int
	for i, est := range ests {
		vr := VariantResult{Users: users[i], Value: est.Mean, Variance: est.Var}
		switch {
		case !finite.All(est.Mean, est.Var):
			vr.Reason = ReasonOverflow
		case i == 0:
		case !finite.All(ce.Mean, ce.Var):
			vr.Reason = ReasonControlOverflow
		default:
			abs := est.Mean - ce.Mean
			loss := ExpectedLoss(ce, est)
			ch := chance(i)
			r, variance, relative := RelativeLift(ce, est)
			var p float64
			var ci Interval
			if relative {
				p, ci = test(r, variance, users[0]+users[i], o)
			}
			if !finite.All(abs, loss, ch, r, variance, p, ci.Low, ci.High) {
				vr.Reason = ReasonOutOfRange
				break
			}
			vr.AbsoluteLift, vr.ExpectedLoss, vr.ChanceToBeatControl = &abs, &loss, &ch
			if relative {
				vr.Lift, vr.CILow, vr.CIHigh, vr.PValue = &r, &ci.Low, &ci.High, &p
				pvals = append(pvals, p)
				pidx = append(pidx, i)
			}
		}
		out[i] = vr
	}
	for k, p := range Adjust(pvals, o.Correction) {
		adj := p
		out[pidx[k]].PValue = &adj
	}
	return out
}

// test returns the p-value and interval of an estimate, fixed-horizon or sequential.
func test(est, variance, n float64, o Options) (float64, Interval) {
	if o.Sequential {
		alpha := 1 - o.Level
		return SequentialPValue(est, variance, n, alpha, o.SequentialTuning),
			ConfidenceSequence(est, variance, n, alpha, o.SequentialTuning)
	}
	return ZTest(est, variance, o.Level)
}

// AnalyzeEstimates compares estimates made elsewhere, such as CUPED-adjusted means,
// control first; the chance to beat control uses normal posteriors.
func AnalyzeEstimates(keys []string, ests []Estimate, users []float64, o Options) []VariantResult {
	res := compare(ests, users, func(t int) float64 { return ChanceToBeatNormal(ests[0], ests[t]) }, o)
	for i := range res {
		res[i].Key = keys[i]
	}
	return res
}
