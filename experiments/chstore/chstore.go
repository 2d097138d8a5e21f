package chstore

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/liftlab/lift/experiments"
	"github.com/liftlab/lift/ingest"
	"github.com/liftlab/lift/internal/chconn"
)

// Store implements experiments.EventStore.
type Store struct {
	conn driver.Conn
	// locks holds a *sync.Mutex per experiment and metric (see lock).
	locks sync.Map
	now   func() time.Time
	chunk int // leaves computed per query (chunkLeaves; tests make it small)

	database string
	// layout is how the tables are laid out, found out at the first refresh.
	layoutMu sync.Mutex
	layout   *layout
}

// layout is one server's tables, or a cluster's: then exposures and events are
// Distributed tables sharded by user, and the leaves, which are sets of users, are
// computed on each shard's local tables (shards: one pool per shard, over its
// replicas) and combined.
type layout struct {
	genSQL string // generationSQL, or clusterGenerationSQL
	shards []driver.Conn
}

// Open connects lazily to the database at addr (native protocol).
func Open(addr, database string) (*Store, error) {
	conn, err := chconn.Open(addr, database, 10*time.Minute)
	if err != nil {
		return nil, fmt.Errorf("chstore: %w", err)
	}
	return &Store{conn: conn, now: time.Now, chunk: chunkLeaves, database: database}, nil
}

// Close closes the connections.
func (s *Store) Close() error {
	s.layoutMu.Lock()
	defer s.layoutMu.Unlock()
	if s.layout != nil {
		for _, c := range s.layout.shards {
			c.Close()
		}
	}
	return s.conn.Close()
}

// MetricAggregates returns per-variant (and per-group) aggregates of one metric. It
// first computes again the parts of the metric whose data changed since they were
// stored, so the answer covers every row stored before the call.
func (s *Store) MetricAggregates(ctx context.Context, q experiments.MetricQuery, by experiments.Breakdown) (experiments.MetricData, error) {
	m, err := newBreakdown(q, by)
	if err != nil {
		return experiments.MetricData{}, err
	}
	root, err := s.total(ctx, m)
	if err != nil {
		return experiments.MetricData{}, fmt.Errorf("chstore: metric %s of %q: %w", q.Event, q.Experiment, err)
	}
	return aggregates(root, q, by), nil
}

// MetricsAggregates returns the aggregates of each qs[i] broken down by bys[i],
// bringing them up to date together first: the metrics of one experiment and event
// type share one pass over its exposures and events, which is most of the work.
// The answers cover every row stored before the call.
func (s *Store) MetricsAggregates(ctx context.Context, qs []experiments.MetricQuery, bys []experiments.Breakdown) ([]experiments.MetricData, error) {
	if len(qs) != len(bys) {
		return nil, fmt.Errorf("chstore: %d queries and %d breakdowns", len(qs), len(bys))
	}
	ms := make([]metric, len(qs))
	for i, q := range qs {
		var err error
		if ms[i], err = newBreakdown(q, bys[i]); err != nil {
			return nil, err
		}
	}
	roots, err := s.refreshAll(ctx, ms)
	if err != nil {
		return nil, err
	}
	out := make([]experiments.MetricData, len(qs))
	for i, m := range ms {
		out[i] = aggregates(roots[m.rootKey()], qs[i], bys[i])
	}
	return out, nil
}

func newBreakdown(q experiments.MetricQuery, by experiments.Breakdown) (metric, error) {
	if by != experiments.Overall && by != experiments.ByDay && by != experiments.BySegment && by != experiments.BySegmentDay {
		return metric{}, fmt.Errorf("chstore: unknown breakdown %q", by)
	}
	return newMetric(q, by)
}

// aggregates is a root's aggregates as q and by ask for them (none for no root):
// its entries summed per variant and group.
func aggregates(root *node, q experiments.MetricQuery, by experiments.Breakdown) experiments.MetricData {
	var data experiments.MetricData
	if root == nil {
		return data
	}
	var arms node
	for _, e := range root.entries {
		if e.multi == 1 {
			data.MultiVariantUsers += float64(e.users)
			if !q.KeepMultiVariant {
				continue
			}
		}
		e.combination = armOf(e.combination, by)
		arms.add(e)
	}
	for _, e := range arms.entries {
		a := experiments.ArmAggregate{Variant: e.variant, Users: float64(e.users), Conversions: float64(e.conversions),
			Sum: e.sum, SumSq: e.sumSq, PreSum: e.preSum, PreSumSq: e.preSumSq, PreCross: e.preCross,
			IPWNum: e.ipwNum, IPWDen: e.ipwDen}
		day := time.Unix(e.day, 0).UTC().Format(time.DateOnly)
		switch by {
		case experiments.ByDay:
			a.Group = day
		case experiments.BySegment:
			a.Group = e.segment
		case experiments.BySegmentDay:
			a.Group, a.Day = e.segment, day
		}
		data.Arms = append(data.Arms, a)
	}
	slices.SortFunc(data.Arms, func(a, b experiments.ArmAggregate) int {
		return cmp.Or(cmp.Compare(a.Group, b.Group), cmp.Compare(a.Day, b.Day), cmp.Compare(a.Variant, b.Variant))
	})
	return data
}

// armOf is the part of combination c that breakdown by reports: the variant, and
// the day or segment or both where it asks for them.
func armOf(c combination, by experiments.Breakdown) combination {
	arm := combination{variant: c.variant}
	switch by {
	case experiments.ByDay:
		arm.day = c.day
	case experiments.BySegment:
		arm.segment = c.segment
	case experiments.BySegmentDay:
		arm.day, arm.segment = c.day, c.segment
	}
	return arm
}

// LatestEvent is the receive time of the newest stored event, leaving out rows
// received beyond the clock plus ingest.MaxSkew (stored before the collector stopped
// believing a client's received_at), which would stand as the newest for decades.
func (s *Store) LatestEvent(ctx context.Context) (time.Time, error) {
	var t time.Time
	if err := s.conn.QueryRow(ctx, "SELECT max(received_at) FROM events WHERE received_at <= ?", time.Now().Add(ingest.MaxSkew)).Scan(&t); err != nil {
		return time.Time{}, fmt.Errorf("chstore: latest event: %w", err)
	}
	if t.Unix() <= 0 {
		return time.Time{}, nil // max of no rows is the epoch: there are no events yet
	}
	return t, nil
}
