package experiments

import (
	"encoding/json"
	"time"

	"github.com/liftlab/lift/experiments/stats"
	"github.com/liftlab/lift/internal/finite"
)

// Results are computed from stored data that may overflow, and JSON has no spelling
// for ±Inf or NaN: these encoders write such a number as null (package finite), so
// that the results API answers whatever is stored. The field lists mirror the types'
// own; a test checks that they encode finite values exactly as the plain types do.

// MarshalJSON writes numbers that are not finite as null.
func (r Results) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Experiment        string         `json:"experiment"`
		Type              string         `json:"type"`
		Status            string         `json:"status"`
		ComputedAt        time.Time      `json:"computed_at"`
		DataFreshness     *time.Time     `json:"data_freshness"`
		Users             finite.Float   `json:"users"`
		MultiVariantUsers finite.Float   `json:"multi_variant_users"`
		SRMPValue         *finite.Float  `json:"srm_p_value"`
		SRM               bool           `json:"srm"`
		Correction        string         `json:"correction"`
		Sequential        bool           `json:"sequential"`
		Control           string         `json:"control,omitempty"`
		Minimum           Minimum        `json:"minimum"`
		Metrics           []MetricResult `json:"metrics"`
		Recommendation    Recommendation `json:"recommendation"`
		Daily             []GroupResult  `json:"daily,omitempty"`
		Segments          []GroupResult  `json:"segments,omitempty"`
	}{r.Experiment, r.Type, r.Status, r.ComputedAt, r.DataFreshness, finite.Float(r.Users), finite.Float(r.MultiVariantUsers),
		finite.Ptr(r.SRMPValue), r.SRM, r.Correction, r.Sequential, r.Control, r.Minimum, r.Metrics, r.Recommendation, r.Daily, r.Segments})
}

// MarshalJSON writes numbers that are not finite as null.
func (m MetricResult) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Key      string                `json:"key"`
		Role     string                `json:"role"`
		Event    string                `json:"event"`
		Kind     string                `json:"kind"`
		Window   string                `json:"window"`
		Variants []stats.VariantResult `json:"variants"`
		CUPED    bool                  `json:"cuped"`
		Theta    finite.Float          `json:"cuped_theta,omitempty"`
	}{m.Key, m.Role, m.Event, m.Kind, m.Window, m.Variants, m.CUPED, finite.Float(m.Theta)})
}

// MarshalJSON writes numbers that are not finite as null.
func (r Recommendation) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Decision    string        `json:"decision"`
		Variant     string        `json:"variant,omitempty"`
		Reason      string        `json:"reason"`
		UsersNeeded *finite.Float `json:"users_needed,omitempty"`
		TooEarly    bool          `json:"too_early,omitempty"`
	}{r.Decision, r.Variant, r.Reason, finite.Ptr(r.UsersNeeded), r.TooEarly})
}

// MarshalJSON writes durations as Go durations ("168h0m0s") and the smallest
// variant's users as null when not finite.
func (m Minimum) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Users           int          `json:"users"`
		Runtime         string       `json:"runtime"`
		SmallestVariant finite.Float `json:"smallest_variant"`
		Ran             string       `json:"ran"`
		StartedAt       *time.Time   `json:"started_at,omitempty"`
		TooEarly        bool         `json:"too_early"`
	}{m.Users, m.Runtime.String(), finite.Float(m.SmallestVariant), m.Ran.String(), m.StartedAt, m.TooEarly})
}
