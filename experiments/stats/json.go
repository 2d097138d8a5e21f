package stats

import (
	"encoding/json"

	"github.com/liftlab/lift/internal/finite"
)

// Results are computed from stored data that may overflow (a sum of large values is
// +Inf), and JSON has no spelling for ±Inf or NaN: the encoders below write such a
// number as null, so one of them cannot fail a whole answer. Reason says why a
// variant's comparison is missing. The field lists mirror the types' own; a test
// checks that they encode finite values exactly as the plain types do.

// MarshalJSON writes numbers that are not finite as null.
func (v VariantResult) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Key                 string        `json:"key"`
		Users               finite.Float  `json:"users"`
		Conversions         *finite.Float `json:"conversions,omitempty"`
		Sum                 *finite.Float `json:"sum,omitempty"`
		Value               finite.Float  `json:"value"`
		Lift                *finite.Float `json:"lift"`
		CILow               *finite.Float `json:"ci_low"`
		CIHigh              *finite.Float `json:"ci_high"`
		PValue              *finite.Float `json:"p_value"`
		ChanceToBeatControl *finite.Float `json:"chance_to_beat_control"`
		AbsoluteLift        *finite.Float `json:"absolute_lift"`
		AbsoluteCILow       *finite.Float `json:"absolute_ci_low"`
		AbsoluteCIHigh      *finite.Float `json:"absolute_ci_high"`
		AbsolutePValue      *finite.Float `json:"absolute_p_value"`
		ExpectedLoss        *finite.Float `json:"expected_loss"`
		DF                  *finite.Float `json:"df"`
		ValueCILow          *finite.Float `json:"value_ci_low,omitempty"`
		ValueCIHigh         *finite.Float `json:"value_ci_high,omitempty"`
		PBest               *finite.Float `json:"p_best,omitempty"`
		NaiveValue          *finite.Float `json:"naive_value,omitempty"`
		Reason              string        `json:"reason,omitempty"`
	}{v.Key, finite.Float(v.Users), finite.Ptr(v.Conversions), finite.Ptr(v.Sum), finite.Float(v.Value),
		finite.Ptr(v.Lift), finite.Ptr(v.CILow), finite.Ptr(v.CIHigh), finite.Ptr(v.PValue),
		finite.Ptr(v.ChanceToBeatControl), finite.Ptr(v.AbsoluteLift), finite.Ptr(v.AbsoluteCILow), finite.Ptr(v.AbsoluteCIHigh),
		finite.Ptr(v.AbsolutePValue), finite.Ptr(v.ExpectedLoss), finite.Ptr(v.DF),
		finite.Ptr(v.ValueCILow), finite.Ptr(v.ValueCIHigh), finite.Ptr(v.PBest), finite.Ptr(v.NaiveValue), v.Reason})
}

// MarshalJSON writes numbers that are not finite as null.
func (r BinomialResult) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Variants  []VariantResult `json:"variants"`
		SRMPValue finite.Float    `json:"srm_p_value"`
		SRM       bool            `json:"srm"`
	}{r.Variants, finite.Float(r.SRMPValue), r.SRM})
}

// MarshalJSON writes numbers that are not finite as null.
func (r Result) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Variants  []VariantResult `json:"variants"`
		SRMPValue finite.Float    `json:"srm_p_value"`
		SRM       bool            `json:"srm"`
		CUPED     bool            `json:"cuped,omitempty"`
		Theta     finite.Float    `json:"cuped_theta,omitempty"`
	}{r.Variants, finite.Float(r.SRMPValue), r.SRM, r.CUPED, finite.Float(r.Theta)})
}
