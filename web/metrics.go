package web

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/liftlab/lift/experiments"
)

type metrics struct {
	decideLatency prometheus.Histogram
	decisions     map[experiments.Reason]prometheus.Counter
	requests      *prometheus.CounterVec
	latency       *prometheus.HistogramVec
	rateLimited   *prometheus.CounterVec
}

func newMetrics(reg *prometheus.Registry) *metrics {
	m := &metrics{
		decideLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "lift_decide_duration_seconds",
			Help:    "Time to answer POST /v1/decide, from body read to response encoded.",
			Buckets: []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1},
		}),
		decisions: map[experiments.Reason]prometheus.Counter{},
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lift_http_requests_total",
			Help: "HTTP requests answered, by route (the pattern, not the path) and status code.",
		}, []string{"route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "lift_http_request_duration_seconds",
			Help:    "Time to answer an HTTP request, by route.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route"}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lift_rate_limited_total",
			Help: "Requests refused with 429 by the per-key rate limit, by endpoint class (decide, events, api).",
		}, []string{"class"}),
	}
	for _, class := range []string{"decide", "events", "api"} {
		m.rateLimited.WithLabelValues(class) // exported at 0 from the start, for alerts on rate()
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
	reg.MustRegister(m.decideLatency, byReason, m.requests, m.latency, m.rateLimited)
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

func (m *metrics) observeRequest(route string, status int, took time.Duration) {
	m.requests.WithLabelValues(route, strconv.Itoa(status)).Inc()
	m.latency.WithLabelValues(route).Observe(took.Seconds())
}
