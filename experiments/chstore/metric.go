package chstore

import (
	"fmt"
	"hash/fnv"
	"time"

	"github.com/liftlab/lift/experiments"
)

// sqlVersion is part of every metric's key in metric_nodes: bump it whenever
// leafSQL changes what it returns, so that old aggregates are computed again.
const sqlVersion = 2

// metric is a MetricQuery as metric_nodes knows it.
type metric struct {
	q     experiments.MetricQuery
	key   string // metric_nodes.metric
	where string // SQL of q.Where
}

func newMetric(q experiments.MetricQuery, by experiments.Breakdown) (metric, error) {
	if q.Kind != "conversion" && q.Kind != "value" {
		return metric{}, fmt.Errorf("chstore: metric %s of %q: unknown kind %q", q.Event, q.Experiment, q.Kind)
	}
	where := whereSQL(q.Where)
	q.Daily = q.Daily || by == experiments.ByDay || by == experiments.BySegmentDay
	key := fmt.Sprintf("v%d/%s/%s/%d", sqlVersion, q.Kind, q.Event, int64(q.Window/time.Second))
	if q.Daily {
		key += "/daily"
	}
	if q.Where != nil {
		// The condition's SQL identifies it (ParseWhere sorts keys); a hash keeps
		// the key short.
		h := fnv.New64a()
		h.Write([]byte(where))
		key += fmt.Sprintf("/%016x", h.Sum64())
	}
	return metric{q: q, key: key, where: where}, nil
}

// rootKey identifies a metric's root among those of every experiment.
func (m metric) rootKey() string { return m.q.Experiment + "\x00" + m.key }
