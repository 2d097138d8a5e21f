package main

import (
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/liftlab/lift/experiments"
	"github.com/liftlab/lift/segments"
)

// snapshotInfo exports the version of the decision snapshot being served as a label
// (lift_snapshot_info{version="..."} 1), so a dashboard shows when every process
// serves the same configuration.
type snapshotInfo struct{ live *experiments.Live }

var snapshotInfoDesc = prometheus.NewDesc("lift_snapshot_info",
	"The configuration version the decision snapshot serves (value always 1).", []string{"version"}, nil)

func (snapshotInfo) Describe(ch chan<- *prometheus.Desc) { ch <- snapshotInfoDesc }

func (s snapshotInfo) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(snapshotInfoDesc, prometheus.GaugeValue, 1, s.live.Snapshot().Version)
}

// workerMetrics are the worker role's series: who leads, and how the bandit updater
// and the segment engine are doing while this process leads them.
type workerMetrics struct {
	leader         *prometheus.GaugeVec
	banditDuration prometheus.Histogram
	banditErrors   prometheus.Counter
	segmentLag     *prometheus.GaugeVec
	segmentUsers   *prometheus.GaugeVec
	segmentEntries *prometheus.GaugeVec
	segmentBytes   *prometheus.GaugeVec
	segmentOwned   *prometheus.GaugeVec
	segmentFuture  *prometheus.CounterVec

	mu             sync.Mutex
	banditLeading  bool
	banditLastGood time.Time
	futureSeen     map[int]uint64 // per shard: Stats.Future last observed
}

func newWorkerMetrics(reg prometheus.Registerer) *workerMetrics {
	m := &workerMetrics{
		leader: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "lift_leader",
			Help: "1 while this process holds the advisory lock of the named singleton, else 0.",
		}, []string{"name"}),
		banditDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "lift_bandit_update_duration_seconds",
			Help:    "Time of one round of the bandit updater (every due bandit read from ClickHouse and published).",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}),
		banditErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lift_bandit_update_errors_total",
			Help: "Rounds of the bandit updater in which some bandit failed to update.",
		}),
		segmentLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "lift_segment_lag_seconds",
			Help: "Segment engine, per shard this process runs: time from the collector receiving the newest applied event to its application.",
		}, []string{"shard"}),
		segmentUsers: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "lift_segment_state_users",
			Help: "Segment engine, per shard this process runs: users with state (recent events or a membership).",
		}, []string{"shard"}),
		segmentEntries: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "lift_segment_state_entries",
			Help: "Segment engine, per shard this process runs: events remembered over all users.",
		}, []string{"shard"}),
		segmentBytes: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "lift_segment_checkpoint_bytes",
			Help: "Segment engine, per shard this process runs: size of the last checkpoint saved to Postgres.",
		}, []string{"shard"}),
		segmentOwned: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "lift_segment_shard_owned",
			Help: "1 for each segment engine shard this process runs (an advisory lock each).",
		}, []string{"shard"}),
		segmentFuture: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lift_segment_future_events_total",
			Help: "Segment engine, per shard this process runs: events ignored because they were received more than the allowed skew (5 minutes) ahead of the engine's clock.",
		}, []string{"shard"}),
		futureSeen: map[int]uint64{},
	}
	age := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "lift_bandit_update_age_seconds",
		Help: "Seconds since the bandit updater last completed a round without error, while this process leads it (0 otherwise).",
	}, m.banditAge)
	for _, name := range []string{"lift.bandit-updater", "lift.segment-engine"} {
		m.leader.WithLabelValues(name).Set(0)
	}
	reg.MustRegister(m.leader, m.banditDuration, m.banditErrors, age, m.segmentLag, m.segmentUsers, m.segmentEntries, m.segmentBytes, m.segmentOwned, m.segmentFuture)
	return m
}

// leading returns the elector's OnChange for the named singleton.
func (m *workerMetrics) leading(name string) func(bool) {
	g := m.leader.WithLabelValues(name)
	return func(leading bool) {
		if leading {
			g.Set(1)
		} else {
			g.Set(0)
		}
		if name == "lift.bandit-updater" {
			m.mu.Lock()
			m.banditLeading, m.banditLastGood = leading, time.Now()
			m.mu.Unlock()
		}
	}
}

func (m *workerMetrics) banditRound(took time.Duration, err error) {
	m.banditDuration.Observe(took.Seconds())
	if err != nil {
		m.banditErrors.Inc()
		return
	}
	m.mu.Lock()
	m.banditLastGood = time.Now()
	m.mu.Unlock()
}

func (m *workerMetrics) banditAge() float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.banditLeading {
		return 0
	}
	return time.Since(m.banditLastGood).Seconds()
}

func (m *workerMetrics) segmentEngine(shard int, s segments.Stats, checkpointBytes int, lag time.Duration) {
	l := strconv.Itoa(shard)
	m.segmentLag.WithLabelValues(l).Set(lag.Seconds())
	m.segmentUsers.WithLabelValues(l).Set(float64(s.Users))
	m.segmentEntries.WithLabelValues(l).Set(float64(s.Entries))
	m.segmentBytes.WithLabelValues(l).Set(float64(checkpointBytes))
	m.mu.Lock()
	prev := m.futureSeen[shard]
	m.futureSeen[shard] = s.Future
	m.mu.Unlock()
	if s.Future < prev {
		prev = 0 // a new engine counts from zero
	}
	m.segmentFuture.WithLabelValues(l).Add(float64(s.Future - prev))
}

// segmentShard records that this process took a shard, or gave it up: the shard's
// series then belong to another process.
func (m *workerMetrics) segmentShard(shard int, owned bool) {
	l := strconv.Itoa(shard)
	if owned {
		m.segmentOwned.WithLabelValues(l).Set(1)
		return
	}
	for _, g := range []*prometheus.GaugeVec{m.segmentOwned, m.segmentLag, m.segmentUsers, m.segmentEntries, m.segmentBytes} {
		g.DeleteLabelValues(l)
	}
	m.mu.Lock()
	delete(m.futureSeen, shard)
	m.mu.Unlock()
}
