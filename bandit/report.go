package bandit

import "time"

// Report is the state of a bandit's allocation: the weights its updater published,
// per bandit, over time, and the posteriors they came from. Those posteriors pool
// every user regardless of when they came, which is what allocation needs and what
// estimation under moving weights must not do: the arms' estimates, P(best) and the
// recommendation whether to declare a winner are the results' (the results API of a
// bandit experiment), not the report's.
type Report struct {
	Experiment string `json:"experiment"`
	// Winner is the declared winner, served to everyone.
	Winner          string          `json:"winner,omitempty"`
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

// ArmReport is one arm of a bandit as its updater last saw it: the weight it
// published, the allocation's P(best) and posterior, and the exposures and plain
// mean it counted (pooled over time, so biased when the weights and the metric both
// moved).
type ArmReport struct {
	Variant   string  `json:"variant"`
	Weight    float64 `json:"weight"`
	PBest     float64 `json:"p_best"`
	Posterior Summary `json:"posterior"`
	Exposures float64 `json:"exposures"`
	NaiveMean float64 `json:"naive_mean"`
}

// Version is one published weights version of one bandit (an experiment's global
// bandit, Segment "", or a segment's).
type Version struct {
	Segment    string    `json:"segment"`
	Version    int64     `json:"version"`
	Variants   []string  `json:"variants"`
	Weights    []float64 `json:"weights"`
	PBest      []float64 `json:"p_best"`
	Posteriors []Summary `json:"posteriors"`
	Counts     []Counts  `json:"counts"`
	BurnIn     bool      `json:"burn_in"`
	ComputedAt time.Time `json:"computed_at"`
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
