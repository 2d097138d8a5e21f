package bandit

import "time"

// Report is what the dashboard and the API show about a bandit experiment.
type Report struct {
	Experiment string `json:"experiment"`
	// Winner is the declared winner, served to everyone; Candidate is the arm whose
	// P(best) has reached WinnerThreshold, when there is one but it is not (yet)
	// declared.
	Winner          string          `json:"winner,omitempty"`
	Candidate       string          `json:"candidate,omitempty"`
	WinnerThreshold float64         `json:"winner_threshold"`
	Segments        []SegmentReport `json:"segments"`
}

// SegmentReport is one bandit: the global one (Segment "") or a segment's.
type SegmentReport struct {
	Segment    string      `json:"segment"`
	Version    int64       `json:"version"`
	ComputedAt time.Time   `json:"computed_at"`
	BurnIn     bool        `json:"burn_in"`
	Arms       []ArmReport `json:"arms"`
	// Regret estimates the conversions (or value) lost so far by not always serving
	// the arm with the best posterior mean.
	Regret  float64        `json:"estimated_regret"`
	History []HistoryPoint `json:"history"`
}

// ArmReport is one arm of a bandit. NaiveMean is the plain observed mean, biased by
// the adaptive allocation; IPWMean re-weights each user by the inverse of the
// probability they had of getting this arm, and IPWLift compares it with the control
// (the first arm). They are nil when no probability was logged.
type ArmReport struct {
	Variant   string   `json:"variant"`
	Weight    float64  `json:"weight"`
	PBest     float64  `json:"p_best"`
	Posterior Summary  `json:"posterior"`
	Exposures float64  `json:"exposures"`
	NaiveMean float64  `json:"naive_mean"`
	IPWMean   *float64 `json:"ipw_mean"`
	IPWLift   *float64 `json:"ipw_lift"`
}

// HistoryPoint is one published weights version.
type HistoryPoint struct {
	At      time.Time `json:"at"`
	Weights []float64 `json:"weights"`
}

// EstimatedRegret is Σ_i n_i·(max_j μ_j − μ_i) over arms with n_i exposures and
// posterior means μ_i.
func EstimatedRegret(exposures, means []float64) float64 {
	best := 0.0
	for _, m := range means {
		best = max(best, m)
	}
	r := 0.0
	for i, n := range exposures {
		r += n * (best - means[i])
	}
	return r
}
