package bandit

import (
	"encoding/json"
	"time"

	"github.com/liftlab/lift/internal/finite"
)

// Reports hold posteriors and counts computed from stored events, whose sums may
// overflow; JSON has no spelling for ±Inf or NaN, so these encoders write such a
// number as null (package finite) instead of failing the whole report. The field lists mirror the types' own; a test checks that they encode
// finite values exactly as the plain types do.

// MarshalJSON writes numbers that are not finite as null.
func (r Report) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Experiment      string          `json:"experiment"`
		Winner          string          `json:"winner,omitempty"`
		WinnerThreshold finite.Float    `json:"winner_threshold"`
		Segments        []SegmentReport `json:"segments"`
	}{r.Experiment, r.Winner, finite.Float(r.WinnerThreshold), r.Segments})
}

// MarshalJSON writes numbers that are not finite as null.
func (s SegmentReport) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Segment    string         `json:"segment"`
		Version    int64          `json:"version"`
		ComputedAt time.Time      `json:"computed_at"`
		BurnIn     bool           `json:"burn_in"`
		Arms       []ArmReport    `json:"arms"`
		Regret     finite.Float   `json:"estimated_regret"`
		History    []HistoryPoint `json:"history"`
	}{s.Segment, s.Version, s.ComputedAt, s.BurnIn, s.Arms, finite.Float(s.Regret), s.History})
}

// MarshalJSON writes numbers that are not finite as null.
func (a ArmReport) MarshalJSON() ([]byte, error) {
	type summary struct {
		Mean finite.Float `json:"mean"`
		Low  finite.Float `json:"low"`
		High finite.Float `json:"high"`
	}
	return json.Marshal(struct {
		Variant   string       `json:"variant"`
		Weight    finite.Float `json:"weight"`
		PBest     finite.Float `json:"p_best"`
		Posterior summary      `json:"posterior"`
		Exposures finite.Float `json:"exposures"`
		NaiveMean finite.Float `json:"naive_mean"`
	}{a.Variant, finite.Float(a.Weight), finite.Float(a.PBest),
		summary{finite.Float(a.Posterior.Mean), finite.Float(a.Posterior.Low), finite.Float(a.Posterior.High)},
		finite.Float(a.Exposures), finite.Float(a.NaiveMean)})
}

// MarshalJSON writes numbers that are not finite as null.
func (h HistoryPoint) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		At      time.Time      `json:"at"`
		Weights []finite.Float `json:"weights"`
	}{h.At, finite.Slice(h.Weights)})
}
