package web

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/liftlab/lift/experiments"
)

type metrics struct {
	decideLatency prometheus.Histogram
	decisions     map[experiments.Reason]prometheus.Counter
}

func newMetrics(reg *prometheus.Registry) *metrics {
	m := &metrics{
		decideLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "lift_decide_duration_seconds",
			Help:    "Time to answer POST /v1/decide, from body read to response encoded.",
			Buckets: []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1},
		}),
		decisions: map[experiments.Reason]prometheus.Counter{},
	}
	byReason := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "lift_decisions_total",
		Help: "Decisions served by /v1/decide, by reason.",
	}, []string{"reason"})
	// Resolve the label values once: the decision path should not hash label sets.
	for _, r := range []experiments.Reason{experiments.ReasonSplit, experiments.ReasonBandit, experiments.ReasonTargetingMatch,
		experiments.ReasonDefault, experiments.ReasonDisabled, experiments.ReasonNotEligible} {
		m.decisions[r] = byReason.WithLabelValues(string(r))
	}
	reg.MustRegister(m.decideLatency, byReason)
	return m
}

func (m *metrics) observeDecide(ds []experiments.Keyed, took time.Duration) {
	m.decideLatency.Observe(took.Seconds())
	for _, d := range ds {
		if c := m.decisions[d.Reason]; c != nil {
			c.Inc()
		}
	}
}
