package stats

import (
	"fmt"
	"math"

	"github.com/liftlab/lift/internal/finite"
)

// Input is what `lift analyze` reads: configured weights and per-variant aggregates,
// control first, of either kind of metric — conversions ({"key","users",
// "conversions"}) or values ({"key","users","sum","sum_squares"}: the sums over the
// variant's users of each user's value and of its square) — with, optionally, CUPED's
// covariate: the same metric per user before exposure ("pre_sum",
// "pre_sum_squares") and the sum of the products of both ("sum_products"), in every
// variant.
type Input struct {
	Weights  []float64      `json:"weights"`
	Variants []VariantInput `json:"variants"`
}

// VariantInput is one variant of an Input. Pointers tell a field left out from 0.
type VariantInput struct {
	Key           string   `json:"key"`
	Users         float64  `json:"users"`
	Conversions   *float64 `json:"conversions,omitempty"`
	Sum           *float64 `json:"sum,omitempty"`
	SumSquares    *float64 `json:"sum_squares,omitempty"`
	PreSum        *float64 `json:"pre_sum,omitempty"`
	PreSumSquares *float64 `json:"pre_sum_squares,omitempty"`
	SumProducts   *float64 `json:"sum_products,omitempty"`
}

// Result is the analysis of an Input: the same fields for either kind of metric,
// and, when CUPED adjusted the estimates, its coefficient.
type Result struct {
	Variants  []VariantResult `json:"variants"`
	SRMPValue float64         `json:"srm_p_value"`
	SRM       bool            `json:"srm"`
	CUPED     bool            `json:"cuped,omitempty"`
	Theta     float64         `json:"cuped_theta,omitempty"`
}

// kind tells the input's kind of metric from its first variant.
func (in *Input) kind() Kind {
	if len(in.Variants) > 0 && in.Variants[0].Conversions == nil && in.Variants[0].Sum != nil {
		return Value
	}
	return Conversion
}

// cuped tells whether the first variant brings CUPED's covariate.
func (in *Input) cuped() bool {
	v := in.Variants[0]
	return v.PreSum != nil || v.PreSumSquares != nil || v.SumProducts != nil
}

// Validate checks the input; the error names the field.
func (in *Input) Validate() error {
	if err := validateWeights(in.Weights, len(in.Variants)); err != nil {
		return err
	}
	kind, cuped := in.kind(), in.cuped()
	for i, v := range in.Variants {
		f := fmt.Sprintf("variants[%d]", i)
		if !(v.Users > 0) || math.IsInf(v.Users, 0) {
			return &InputError{f + ".users", "must be a positive number"}
		}
		if kind == Conversion {
			switch {
			case v.Sum != nil || v.SumSquares != nil:
				return &InputError{f + ".sum", "a conversion metric has conversions, not sum and sum_squares (the first variant sets the kind)"}
			case v.Conversions == nil:
				return &InputError{f + ".conversions", "is required (or give every variant sum and sum_squares for a value metric)"}
			case !(*v.Conversions >= 0):
				return &InputError{f + ".conversions", "must be zero or more"}
			case *v.Conversions > v.Users:
				return &InputError{f + ".conversions", "must not exceed users"}
			}
		} else {
			switch {
			case v.Conversions != nil:
				return &InputError{f + ".conversions", "a value metric has sum and sum_squares, not conversions (the first variant sets the kind)"}
			case v.Sum == nil:
				return &InputError{f + ".sum", "is required for a value metric"}
			case v.SumSquares == nil:
				return &InputError{f + ".sum_squares", "is required for a value metric"}
			}
			if err := checkSums(f+".sum_squares", v.Users, *v.Sum, *v.SumSquares); err != nil {
				return err
			}
		}
		if cuped {
			for _, in := range []struct {
				name string
				p    *float64
			}{{"pre_sum", v.PreSum}, {"pre_sum_squares", v.PreSumSquares}, {"sum_products", v.SumProducts}} {
				if in.p == nil {
					return &InputError{f + "." + in.name, "is required in every variant when CUPED's pre_sum, pre_sum_squares and sum_products are given"}
				}
			}
			if err := checkSums(f+".pre_sum_squares", v.Users, *v.PreSum, *v.PreSumSquares); err != nil {
				return err
			}
		} else if v.PreSum != nil || v.PreSumSquares != nil || v.SumProducts != nil {
			return &InputError{f + ".pre_sum", "CUPED's inputs must be in every variant or in none (the first variant has none)"}
		}
	}
	return nil
}

// checkSums refuses a sum of squares smaller than the sum allows: Σy² ≥ (Σy)²/n for
// any values, give or take rounding.
func checkSums(field string, n, sum, sumSq float64) error {
	if !(sumSq >= 0) {
		return &InputError{field, "must be zero or more"}
	}
	if d := sumSq - sum*(sum/n); d < -1e-9*sum*(sum/n) {
		return &InputError{field, fmt.Sprintf("must be at least sum²/users (%g): no values have these sums", sum*(sum/n))}
	}
	return nil
}

// Analyze analyses an Input: AnalyzeBinomial or AnalyzeMeans by kind, the estimates
// adjusted by CUPED when the covariate is given and varies, and the sample-ratio
// test against the weights. Rates and means shown stay the observed ones; lifts,
// intervals and p-values come from the adjusted estimates.
func Analyze(in Input, o Options) (Result, error) {
	if err := in.Validate(); err != nil {
		return Result{}, err
	}
	kind := in.kind()
	keys := make([]string, len(in.Variants))
	users := make([]float64, len(in.Variants))
	ms := make([]Moments, len(in.Variants))
	for i, v := range in.Variants {
		keys[i], users[i] = v.Key, v.Users
		if kind == Conversion {
			ms[i] = Moments{N: v.Users, Sum: *v.Conversions, SumSq: *v.Conversions} // 0/1: its own square
		} else {
			ms[i] = Moments{N: v.Users, Sum: *v.Sum, SumSq: *v.SumSquares}
		}
	}
	var res Result
	if kind == Conversion {
		counts := BinomialInput{Weights: in.Weights}
		for i, v := range in.Variants {
			counts.Variants = append(counts.Variants, VariantCounts{Key: keys[i], Users: v.Users, Conversions: *v.Conversions})
		}
		b, err := AnalyzeBinomial(counts, o)
		if err != nil {
			return Result{}, err
		}
		res.Variants = b.Variants
	} else {
		vs, err := AnalyzeMeans(keys, ms, o)
		if err != nil {
			return Result{}, err
		}
		res.Variants = vs
	}
	if in.cuped() {
		cov := make([]CovMoments, len(ms))
		for i, v := range in.Variants {
			cov[i] = CovMoments{N: v.Users, SumY: ms[i].Sum, SumY2: ms[i].SumSq, SumX: *v.PreSum, SumX2: *v.PreSumSquares, SumXY: *v.SumProducts}
		}
		if adjusted, theta, ok := AdjustCUPED(keys, cov, kind, o); ok {
			for i := range adjusted {
				adjusted[i].Value, adjusted[i].Conversions, adjusted[i].Sum = res.Variants[i].Value, res.Variants[i].Conversions, res.Variants[i].Sum
			}
			res.Variants, res.CUPED, res.Theta = adjusted, true, theta
		}
	}
	res.SRMPValue = SRM(users, in.Weights)
	res.SRM = res.SRMPValue < SRMThreshold
	return res, nil
}

// AdjustCUPED compares CUPED-adjusted estimates, when every variant has 2 users or
// more and the covariate varies somewhere; ok is false (and nothing is adjusted)
// otherwise, or when the covariate's sums overflow.
func AdjustCUPED(keys []string, cov []CovMoments, kind Kind, o Options) (res []VariantResult, theta float64, ok bool) {
	varies := false
	for _, v := range cov {
		if v.N < 2 {
			return nil, 0, false
		}
		x, resolved := Moments{N: v.N, Sum: v.SumX, SumSq: v.SumX2}.Variance()
		varies = varies || x > 0 && resolved
	}
	if !varies {
		return nil, 0, false
	}
	ests, theta := CUPED(cov)
	if !finite.All(theta) {
		return nil, 0, false
	}
	return AnalyzeEstimates(keys, ests, kind, o), theta, true
}
