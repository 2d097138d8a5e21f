package chstore

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"

	"golang.org/x/sync/errgroup"
)

// The refresh protocol: which metrics and leaves to compute again, in which order,
// and how their roots are brought up to date (see the package comment).

const (
	// chunkLeaves bounds how many leaves one query computes, which bounds its memory
	// when a whole experiment is computed for the first time (Store.chunk), and
	// scatteredLeaves how many it lists when they are not a range: the lists must
	// stay within what ClickHouse parses by default (256 KiB, 50,000 elements).
	chunkLeaves     = 16384
	scatteredLeaves = 4096
	// maxTogether is how many metrics one pass computes: their event conditions are
	// bits of a UInt64.
	maxTogether = 64
	// computeAhead is how many chunks are computed at once: two keep ClickHouse busy
	// while lift reads, applies and stores the one before (a first computation over
	// 10,000,000 exposures is sixteen chunks).
	computeAhead = 2
)

// lock serialises refreshes of one metric within this process: the second caller
// then finds the nodes the first computed and only computes what arrived since.
func (s *Store) lock(m metric) func() {
	mu, _ := s.locks.LoadOrStore(m.rootKey(), new(sync.Mutex))
	mu.(*sync.Mutex).Lock()
	return mu.(*sync.Mutex).Unlock
}

// refreshAll brings metrics up to date, those of one experiment and event type
// together, and returns their roots by rootKey.
func (s *Store) refreshAll(ctx context.Context, ms []metric) (map[string]*node, error) {
	out := map[string]*node{}
	// Locks are taken in key order, so that two refreshes never wait for each other.
	for _, group := range byEvent(ms) {
		for len(group) > 0 {
			n := min(len(group), maxTogether)
			roots, err := s.refreshLocked(ctx, group[:n])
			if err != nil {
				return nil, fmt.Errorf("chstore: metrics of %s on %s: %w", group[0].q.Experiment, group[0].q.Event, err)
			}
			for i, m := range group[:n] {
				out[m.rootKey()] = roots[i]
			}
			group = group[n:]
		}
	}
	return out, nil
}

// byEvent groups distinct metrics by experiment and event type, groups and metrics
// in key order.
func byEvent(ms []metric) [][]metric {
	groups := map[[2]string][]metric{}
	for _, m := range ms {
		k := [2]string{m.q.Experiment, m.q.Event}
		if !slices.ContainsFunc(groups[k], func(o metric) bool { return o.key == m.key }) {
			groups[k] = append(groups[k], m)
		}
	}
	keys := make([][2]string, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b [2]string) int { return cmp.Or(cmp.Compare(a[0], b[0]), cmp.Compare(a[1], b[1])) })
	out := make([][]metric, len(keys))
	for i, k := range keys {
		out[i] = groups[k]
		slices.SortFunc(out[i], func(a, b metric) int { return cmp.Compare(a.key, b.key) })
	}
	return out
}

func (s *Store) refreshLocked(ctx context.Context, ms []metric) ([]*node, error) {
	for _, m := range ms {
		defer s.lock(m)()
	}
	version := uint64(s.now().UnixNano())
	gen, err := s.generation(ctx)
	if err != nil {
		return nil, err
	}
	return s.refresh(ctx, ms, gen, version)
}

// total returns the metric's root node, computing first every leaf whose rows
// changed since it was stored.
//
// Counts are read before the data they stamp, and a materialized view writes its
// rows only after the rows it saw are in their table, so a node covers at least the
// rows its stamp counts. The root is current when its stamp equals the counts now:
// counts only grow, and the root's stamp is the sum of its leaves' stamps, each a
// past reading of its leaf's counts.
func (s *Store) total(ctx context.Context, m metric) (*node, error) {
	defer s.lock(m)()
	version := uint64(s.now().UnixNano())
	gen, err := s.generation(ctx)
	if err != nil {
		return nil, err
	}
	var all stamp
	if err := s.conn.QueryRow(ctx, rowsSQL, m.q.Experiment, m.q.Event).Scan(&all.exposureRows, &all.eventRows); err != nil {
		return nil, err
	}
	all.generation = gen
	if all.empty() {
		return nil, nil // no rows at all
	}
	root, err := s.root(ctx, m)
	if err != nil || root != nil && root.stamp == all {
		return root, err
	}
	roots, err := s.refresh(ctx, []metric{m}, gen, version)
	if err != nil {
		return nil, err
	}
	return roots[0], nil
}

// refresh brings metrics ms (of one experiment and event type) up to date and
// returns their roots: it computes, in one pass for all of them, every leaf whose
// counts differ from those its metric's root records, and updates each root by the
// difference between the new aggregates of those leaves and the versions the root
// sums, storing the last leaves and the roots in one insert, which ClickHouse makes
// visible at once.
//
// A root records which version of each leaf it sums, so it is always the sum of
// those versions, whatever else was stored since (another process refreshing at
// the same time, a refresh stopped between inserts): the difference is exact. A
// metric without a root starts from the empty sum, which sums no leaf. When a
// version a root sums is gone (a background merge replaced it by a newer one), the
// root is summed again from every leaf instead.
func (s *Store) refresh(ctx context.Context, ms []metric, gen, version uint64) ([]*node, error) {
	want, roots, err := s.readState(ctx, ms, gen)
	if err != nil {
		return nil, err
	}
	u := plan(ms, roots, want, gen)
	if len(u.ms) == 0 {
		return roots, nil
	}
	from, err := s.eventsFrom(ctx, ms[0].q.Experiment)
	if err != nil {
		return nil, err
	}
	var chunks [][]uint32
	for rest := u.stale; len(rest) > 0; {
		var chunk []uint32
		chunk, rest = nextChunk(rest, s.chunk)
		chunks = append(chunks, chunk)
	}
	if err := s.refreshChunks(ctx, u, chunks, want, from, gen, version); err != nil {
		return nil, err
	}
	for i, m := range u.ms {
		r := u.roots[i]
		if r == nil { // a version it sums is gone
			if r, err = s.sumRoot(ctx, m, version); err != nil {
				return nil, err
			}
		}
		roots[u.index[i]] = r
	}
	return roots, nil
}

// readState reads the counts of every leaf (with generation gen) and the roots of
// ms, at once.
func (s *Store) readState(ctx context.Context, ms []metric, gen uint64) (want []stamp, roots []*node, err error) {
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) {
		want, err = s.counts(gctx, ms[0].q.Experiment, ms[0].q.Event, gen)
		return err
	})
	g.Go(func() (err error) {
		roots, err = s.roots(gctx, ms)
		return err
	})
	return want, roots, g.Wait()
}

// update is what a refresh brings up to date: the metrics whose roots are not
// current, and the leaves to compute for them.
type update struct {
	ms     []metric // the metrics to bring up to date
	index  []int    // per metric: its index in the refresh's list
	roots  []*node  // per metric: its root being updated, nil once it must be summed again
	deltas []delta  // per metric: what the leaves computed so far add to its root
	stale  []uint32 // ascending: every leaf whose stamp differs in any of the roots
}

// plan finds the metrics of ms whose roots are not current with the counts want in
// generation gen, and the leaves to compute. A missing root is the sum of no leaves.
func plan(ms []metric, roots []*node, want []stamp, gen uint64) *update {
	u := &update{}
	isStale := make([]bool, leafCount)
	for i, m := range ms {
		r := roots[i]
		if r == nil {
			r = &node{leaves: make([]leaf, leafCount)}
		}
		if r.markStale(want, gen, isStale) {
			u.ms, u.index, u.roots, u.deltas = append(u.ms, m), append(u.index, i), append(u.roots, r), append(u.deltas, delta{})
		}
	}
	for l, yes := range isStale {
		if yes {
			u.stale = append(u.stale, uint32(l))
		}
	}
	return u
}

// nextChunk splits the first leaves to compute in one query off stale: at most size,
// and at most scatteredLeaves unless they are a range.
func nextChunk(stale []uint32, size int) (chunk, rest []uint32) {
	chunk = stale[:min(len(stale), size)]
	if !contiguous(chunk) {
		chunk = chunk[:min(len(chunk), scatteredLeaves)]
	}
	return chunk, stale[len(chunk):]
}

// refreshChunks computes the leaves of chunks for every metric of u, adds their
// difference to the roots, and stores them, chunk by chunk in order; with the last
// chunk it stores the roots too (in generation gen), in the same insert. While a
// chunk is applied and stored, ClickHouse already computes the next ones
// (computeAhead), so that neither side waits for the other.
func (s *Store) refreshChunks(ctx context.Context, u *update, chunks [][]uint32, want []stamp, from uint32, gen, version uint64) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		computed, old []map[uint32]*node
		err           error
	}
	results := make([]chan result, len(chunks))
	for i := range results {
		results[i] = make(chan result, 1)
	}
	// The versions the roots sum are read while the leaves are computed; both only
	// read, so they may run ahead of the stores (the counts they are stamped with
	// were read before any of them).
	// applyChunk sets a root to nil once it must be summed again; the readers ahead
	// keep the list as it was (each reads only the leaves of its own chunk, which
	// applyChunk writes only once that chunk is read).
	roots := slices.Clone(u.roots)
	slots := make(chan struct{}, computeAhead)
	go func() {
		for i, chunk := range chunks {
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				return
			}
			go func() {
				var r result
				g, gctx := errgroup.WithContext(ctx)
				g.Go(func() (err error) {
					r.computed, err = s.computeLeaves(gctx, u.ms, chunk, want, from)
					return err
				})
				g.Go(func() (err error) {
					r.old, err = s.oldLeaves(gctx, u.ms, chunk, roots)
					return err
				})
				r.err = g.Wait()
				results[i] <- r
			}()
		}
	}()
	for i, chunk := range chunks {
		var r result
		select {
		case r = <-results[i]:
		case <-ctx.Done():
			return ctx.Err()
		}
		if r.err != nil {
			return r.err
		}
		if err := s.applyChunk(ctx, u, chunk, r.computed, r.old, i == len(chunks)-1, gen, version); err != nil {
			return err
		}
		<-slots
	}
	return nil
}

// applyChunk adds the difference between the computed and the old leaves of chunk
// to the roots of u, and stores the computed leaves; with the last chunk, it stores
// the roots too (in generation gen), in the same insert.
func (s *Store) applyChunk(ctx context.Context, u *update, chunk []uint32, computed, old []map[uint32]*node, last bool, gen, version uint64) error {
	for i, r := range u.roots {
		if r != nil && !u.deltas[i].addChunk(chunk, r.leaves, old[i], computed[i], version) {
			u.roots[i] = nil // a version it sums is gone
		}
	}
	var roots []*node
	if last {
		for i, r := range u.roots {
			if r != nil {
				r.stamp, r.version = r.sumStamps(gen), version
				r.entries = u.deltas[i].apply(r.entries)
			}
		}
		roots = u.roots
	}
	return s.store(ctx, u.ms, chunk, computed, roots, version)
}

// sumRoot sums the root of m again from all its stored leaves.
func (s *Store) sumRoot(ctx context.Context, m metric, version uint64) (*node, error) {
	rows, err := s.conn.Query(ctx, allLeavesSQL, m.q.Experiment, m.key)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	root := &node{leaves: make([]leaf, leafCount), version: version}
	d := delta{}
	genMin, genMax := ^uint64(0), uint64(0)
	for rows.Next() {
		var id uint32
		var l node
		var packed string
		if err := rows.Scan(&id, &l.version, &l.exposureRows, &l.eventRows, &l.generation, &packed); err != nil {
			return nil, err
		}
		if l.entries, err = unpack(packed); err != nil {
			return nil, err
		}
		if id >= leafCount {
			return nil, fmt.Errorf("leaf %d out of range", id)
		}
		root.leaves[id] = leaf{l.exposureRows, l.eventRows, l.version}
		genMin, genMax = min(genMin, l.generation), max(genMax, l.generation)
		d.add(&l, 1)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	root.stamp = root.sumStamps(0) // generation 0: not current
	if genMin == genMax {
		root.generation = genMin // unless all leaves are of one generation
	}
	root.entries = d.apply(nil)
	return root, s.store(ctx, []metric{m}, nil, nil, []*node{root}, version)
}
