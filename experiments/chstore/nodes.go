package chstore

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"golang.org/x/sync/errgroup"

	"github.com/liftlab/lift/internal/chconn"
)

// Reading and writing bucket_rows, daily_exposures and metric_nodes: the queries of
// sql.go run, their rows scanned into nodes and nodes turned into rows.

// The levels of metric_nodes.
const (
	leafLevel = 0
	rootLevel = 1
)

// columns holds the root's aggregates as metric_nodes stores them.
type columns struct {
	multi                                                  []uint8
	variant, segment                                       []string
	day                                                    []time.Time
	users, conversions                                     []uint64
	sum, sumSq, preSum, preSumSq, preCross, ipwNum, ipwDen []float64
}

// targets are the scan destinations of columns, in arrayColumns' order.
func (c *columns) targets() []any {
	return []any{&c.multi, &c.variant, &c.day, &c.segment, &c.users, &c.conversions,
		&c.sum, &c.sumSq, &c.preSum, &c.preSumSq, &c.preCross, &c.ipwNum, &c.ipwDen}
}

// entries are the entries the columns hold, one per array index.
func (c *columns) entries() []entry {
	out := make([]entry, len(c.users))
	for i := range out {
		out[i] = entry{combination{c.multi[i], c.variant[i], c.segment[i], c.day[i].Unix()}, c.users[i], c.conversions[i],
			c.sum[i], c.sumSq[i], c.preSum[i], c.preSumSq[i], c.preCross[i], c.ipwNum[i], c.ipwDen[i]}
	}
	return out
}

// columnsOf is entries as the root's arrays (empty, not nil, for no entries).
func columnsOf(entries []entry) columns {
	c := columns{multi: []uint8{}, variant: []string{}, segment: []string{}, day: []time.Time{}, users: []uint64{},
		conversions: []uint64{}, sum: []float64{}, sumSq: []float64{}, preSum: []float64{}, preSumSq: []float64{},
		preCross: []float64{}, ipwNum: []float64{}, ipwDen: []float64{}}
	for _, e := range entries {
		c.multi = append(c.multi, e.multi)
		c.variant = append(c.variant, e.variant)
		c.segment = append(c.segment, e.segment)
		c.day = append(c.day, time.Unix(e.day, 0).UTC())
		c.users = append(c.users, e.users)
		c.conversions = append(c.conversions, e.conversions)
		c.sum = append(c.sum, e.sum)
		c.sumSq = append(c.sumSq, e.sumSq)
		c.preSum = append(c.preSum, e.preSum)
		c.preSumSq = append(c.preSumSq, e.preSumSq)
		c.preCross = append(c.preCross, e.preCross)
		c.ipwNum = append(c.ipwNum, e.ipwNum)
		c.ipwDen = append(c.ipwDen, e.ipwDen)
	}
	return c
}

// values is the arguments of one insertSQL row: a leaf's aggregates packed, the
// root's in arrays with its leaves' stamps.
func (n *node) values(experiment, metric string, level uint8, id uint32, version uint64) []any {
	c := columnsOf(nil)
	packed, stamps := "", ""
	if level == leafLevel {
		packed = pack(n.entries)
	} else {
		c, stamps = columnsOf(n.entries), packStamps(n.leaves)
	}
	return []any{experiment, metric, level, id, version, n.exposureRows, n.eventRows, n.generation, packed,
		c.multi, c.variant, c.day, c.segment, c.users, c.conversions, c.sum, c.sumSq, c.preSum, c.preSumSq,
		c.preCross, c.ipwNum, c.ipwDen, stamps}
}

// generation fingerprints the mutations and partitions of exposures and events
// (generationSQL), of every shard on a cluster (clusterGenerationSQL).
func (s *Store) generation(ctx context.Context) (uint64, error) {
	l, err := s.tables(ctx)
	if err != nil {
		return 0, err
	}
	var gen uint64
	err = s.conn.QueryRow(ctx, l.genSQL).Scan(&gen)
	return gen, err
}

// tables finds out once whether exposures and events are Distributed, and then
// opens a connection pool to every shard.
func (s *Store) tables(ctx context.Context) (*layout, error) {
	s.layoutMu.Lock()
	defer s.layoutMu.Unlock()
	if s.layout != nil {
		return s.layout, nil
	}
	cl, err := chconn.OpenLayout(ctx, s.conn, s.database, 10*time.Minute)
	if err != nil {
		return nil, err
	}
	l := &layout{genSQL: generationSQL, shards: cl.Conns}
	if cl.Cluster != "" {
		l.genSQL = clusterGenerationSQL(s.database, cl.Shards)
	}
	s.layout = l
	return l, nil
}

// eventsFrom returns the earliest time (Unix seconds) an event can count for
// experiment: the pre-period before its first day. Filtering events by it in
// leafSQL, rather than by a subquery on exposures, matters on 18.16, which
// evaluates such a subquery anew at every stage of the query's analysis.
func (s *Store) eventsFrom(ctx context.Context, experiment string) (uint32, error) {
	var first uint32
	if err := s.conn.QueryRow(ctx, firstDaySQL, experiment).Scan(&first); err != nil {
		return 0, err
	}
	if first < preSeconds {
		return 0, nil
	}
	return first - preSeconds, nil
}

// counts reads the rows each leaf has received, the stamp (in generation gen) its
// computation gets.
func (s *Store) counts(ctx context.Context, experiment, event string, gen uint64) ([]stamp, error) {
	want := make([]stamp, leafCount)
	for l := range want {
		want[l].generation = gen
	}
	rows, err := s.conn.Query(ctx, leafRowsSQL, experiment, event)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var b uint16
	var x, e [leavesPerBucket]uint64
	for rows.Next() {
		if err := rows.Scan(&b, &x[0], &x[1], &x[2], &x[3], &e[0], &e[1], &e[2], &e[3]); err != nil {
			return nil, err
		}
		for k := range leavesPerBucket {
			l := int(b)*leavesPerBucket + k
			want[l].exposureRows, want[l].eventRows = x[k], e[k]
		}
	}
	return want, rows.Err()
}

// root reads the root of m without its leaves' stamps, nil if there is none.
func (s *Store) root(ctx context.Context, m metric) (*node, error) {
	rows, err := s.conn.Query(ctx, rootSQL, m.q.Experiment, m.key)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	if !rows.Next() {
		return nil, rows.Err()
	}
	n := &node{}
	var c columns
	if err := rows.Scan(append([]any{&n.version, &n.exposureRows, &n.eventRows, &n.generation}, c.targets()...)...); err != nil {
		return nil, err
	}
	n.entries = c.entries()
	return n, rows.Err()
}

// roots reads the roots of ms with their leaves' stamps, nil where there is none.
func (s *Store) roots(ctx context.Context, ms []metric) ([]*node, error) {
	index, keys := keySet(ms, func(int) bool { return true })
	out := make([]*node, len(ms))
	newest, versions, err := s.newestRoots(ctx, ms[0].q.Experiment, keys)
	if err != nil || len(versions.Value) == 0 {
		return out, err
	}
	rows, err := s.conn.Query(ctx, rootsSQL, ms[0].q.Experiment, keys, versions)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var key string
		n := &node{}
		var c columns
		var stamps string
		if err := rows.Scan(append(append([]any{&key, &n.version, &n.exposureRows, &n.eventRows, &n.generation}, c.targets()...),
			&stamps)...); err != nil {
			return nil, err
		}
		if n.version != newest[key] {
			continue // an older root of this metric with another's newest version
		}
		if n.leaves, err = unpackStamps(stamps); err != nil {
			continue // unreadable: start again from the empty sum
		}
		n.entries = c.entries()
		out[index[key]] = n
	}
	return out, rows.Err()
}

// newestRoots reads the newest version of the root of each metric of keys that has
// one, by metric key and as a set.
func (s *Store) newestRoots(ctx context.Context, experiment string, keys clickhouse.GroupSet) (map[string]uint64, clickhouse.GroupSet, error) {
	newest := map[string]uint64{}
	var versions clickhouse.GroupSet // version IN (…)
	rows, err := s.conn.Query(ctx, rootVersionsSQL, experiment, keys)
	if err != nil {
		return nil, versions, err
	}
	defer rows.Close()
	for rows.Next() {
		var key string
		var v uint64
		if err := rows.Scan(&key, &v); err != nil {
			return nil, versions, err
		}
		newest[key] = v
		versions.Value = append(versions.Value, v)
	}
	return newest, versions, rows.Err()
}

// keySet is the keys of the metrics of ms for which include(i) holds, as a set for
// "metric IN ?" and with their index in ms.
func keySet(ms []metric, include func(i int) bool) (map[string]int, clickhouse.GroupSet) {
	index := map[string]int{}
	var keys clickhouse.GroupSet
	for i, m := range ms {
		if include(i) {
			index[m.key] = i
			keys.Value = append(keys.Value, m.key)
		}
	}
	return index, keys
}

// oldLeaves reads the stored versions of the leaves of chunk, per metric of ms
// whose root is being updated (roots[i] not nil), keeping those the root sums.
func (s *Store) oldLeaves(ctx context.Context, ms []metric, chunk []uint32, roots []*node) ([]map[uint32]*node, error) {
	old := make([]map[uint32]*node, len(ms))
	for i := range old {
		old[i] = map[uint32]*node{}
	}
	index, keys := keySet(ms, func(i int) bool {
		return roots[i] != nil && slices.ContainsFunc(chunk, func(l uint32) bool { return roots[i].leaves[l].version != 0 })
	})
	if len(keys.Value) == 0 {
		return old, nil
	}
	rows, err := s.conn.Query(cached(ctx), fmt.Sprintf(oldLeavesSQL, numbers(chunk)), ms[0].q.Experiment, keys)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var key, packed string
		var id uint32
		var version uint64
		if err := rows.Scan(&key, &id, &version, &packed); err != nil {
			return nil, err
		}
		i := index[key]
		if version != roots[i].leaves[id].version {
			continue
		}
		entries, err := unpack(packed)
		if err != nil {
			return nil, err
		}
		old[i][id] = &node{version: version, entries: entries}
	}
	return old, rows.Err()
}

// computeLeaves runs leafSQL over the given leaves for every metric of ms, counting
// events from from (Unix seconds): per metric, the leaves by id, whose stamps are
// the counts read before. A metric that is not Daily has its days merged.
func (s *Store) computeLeaves(ctx context.Context, ms []metric, chunk []uint32, want []stamp, from uint32) ([]map[uint32]*node, error) {
	out := make([]map[uint32]*node, len(ms))
	for i := range ms {
		out[i] = make(map[uint32]*node, len(chunk))
		for _, b := range chunk {
			out[i][b] = &node{stamp: want[b]}
		}
	}
	if len(chunk) == 0 {
		return out, nil
	}
	l, err := s.tables(ctx)
	if err != nil {
		return nil, err
	}
	if len(l.shards) == 0 {
		return out, s.scanLeaves(ctx, s.conn, leafQuery(ms, chunk), ms, out, from, nil)
	}
	// A leaf is a set of users and a user's rows live on one shard, so each shard
	// computes its part of the leaves from its local tables, where the bucket column
	// is an index (in the Distributed tables it is an ALIAS). The shards compute at
	// once: on a cluster of N machines a chunk takes about as long as one shard's
	// part of it, not the sum of all N (docs/deploy.md, "Performance on a cluster").
	query := localLeafQuery(leafQuery(ms, chunk))
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	for _, conn := range l.shards {
		g.Go(func() error { return s.scanLeaves(gctx, conn, query, ms, out, from, &mu) })
	}
	return out, g.Wait()
}

// scanLeaves runs one leaf query and adds its rows to out, holding mu (if not nil)
// while it does, since the shards of a cluster add to the same leaves.
func (s *Store) scanLeaves(ctx context.Context, conn driver.Conn, query string, ms []metric, out []map[uint32]*node, from uint32, mu *sync.Mutex) error {
	rows, err := conn.Query(cached(ctx), query, ms[0].q.Experiment, ms[0].q.Event, from)
	if err != nil {
		return err
	}
	defer rows.Close()
	r := newLeafRow(len(ms))
	targets := r.targets()
	// The rows are one per leaf and combination, the day included when any metric
	// is daily: a metric that is not then merges its days, the others append.
	daily := slices.ContainsFunc(ms, func(m metric) bool { return m.q.Daily })
	for rows.Next() {
		if err := rows.Scan(targets...); err != nil {
			return err
		}
		if mu != nil {
			mu.Lock()
		}
		for i, m := range ms {
			n := out[i][r.leaf]
			switch {
			case n == nil:
			case daily && !m.q.Daily:
				n.add(r.entry(i, false))
			case mu != nil: // another shard may have given the leaf this combination
				n.add(r.entry(i, m.q.Daily))
			default:
				n.entries = append(n.entries, r.entry(i, m.q.Daily))
			}
		}
		if mu != nil {
			mu.Unlock()
		}
	}
	return rows.Err()
}

// leafRow is one row of leafSQL: a leaf's combination, its users and Σ 1/p, and
// per metric the conversions and the six sums, in the order leafQuery writes them.
type leafRow struct {
	leaf   uint32
	c      combination
	day    time.Time
	users  uint64
	ipwDen float64
	convs  []uint64
	sums   [][6]float64
}

func newLeafRow(metrics int) *leafRow {
	return &leafRow{convs: make([]uint64, metrics), sums: make([][6]float64, metrics)}
}

func (r *leafRow) targets() []any {
	targets := []any{&r.leaf, &r.c.multi, &r.c.variant, &r.day, &r.c.segment, &r.users, &r.ipwDen}
	for i := range r.convs {
		targets = append(targets, &r.convs[i])
		for j := range r.sums[i] {
			targets = append(targets, &r.sums[i][j])
		}
	}
	return targets
}

// entry is the row's entry for metric i, on the day of first exposure if daily.
func (r *leafRow) entry(i int, daily bool) entry {
	s := r.sums[i]
	e := entry{r.c, r.users, r.convs[i], s[0], s[1], s[2], s[3], s[4], s[5], r.ipwDen}
	if daily {
		e.day = r.day.Unix()
	}
	return e
}

// store writes, in one insert, the leaves of chunk for every metric of ms (one row
// each, empty for leaves without users, so that they too are known to be computed)
// and the roots of ms that are not nil. The rows go to the driver column by column,
// which spares it converting every value through reflection.
func (s *Store) store(ctx context.Context, ms []metric, chunk []uint32, leaves []map[uint32]*node, roots []*node, version uint64) error {
	var rows [][]any
	for i, m := range ms {
		for _, id := range chunk {
			rows = append(rows, leaves[i][id].values(m.q.Experiment, m.key, leafLevel, id, version))
		}
	}
	for i, r := range roots {
		if r != nil {
			rows = append(rows, r.values(ms[i].q.Experiment, ms[i].key, rootLevel, 0, version))
		}
	}
	if len(rows) == 0 {
		return nil
	}
	batch, err := s.conn.PrepareBatch(ctx, insertSQL)
	if err != nil {
		return err
	}
	defer batch.Abort()
	for c := range rows[0] {
		if err := batch.Column(c).Append(column(rows, c)); err != nil {
			return fmt.Errorf("metric_nodes column %d: %w", c, err)
		}
	}
	return batch.Send()
}

// column is column c of rows, as a slice of its values' type.
func column(rows [][]any, c int) any {
	switch rows[0][c].(type) {
	case string:
		return columnOf[string](rows, c)
	case uint8:
		return columnOf[uint8](rows, c)
	case uint32:
		return columnOf[uint32](rows, c)
	case uint64:
		return columnOf[uint64](rows, c)
	case []uint8:
		return columnOf[[]uint8](rows, c)
	case []string:
		return columnOf[[]string](rows, c)
	case []time.Time:
		return columnOf[[]time.Time](rows, c)
	case []uint64:
		return columnOf[[]uint64](rows, c)
	case []float64:
		return columnOf[[]float64](rows, c)
	}
	panic(fmt.Sprintf("chstore: no column of %T", rows[0][c]))
}

func columnOf[T any](rows [][]any, c int) []T {
	out := make([]T, len(rows))
	for i, r := range rows {
		out[i] = r[c].(T)
	}
	return out
}
