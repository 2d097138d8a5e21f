package chstore

import (
	"cmp"
	"slices"
)

// The arithmetic of the tree of aggregates: what a leaf and a root hold, the one sum
// of their aggregates (entry.addScaled) and the difference a refresh adds to a root.
// No I/O here; nodes.go reads and writes these types.

// The tree: users fall into 65,536 buckets by cityHash64(user_id) % 65536, the
// exposures' and events' materialized column bucket by which they are sorted, and
// each bucket into four leaves (leafOf in sql.go). Everything about a user's metric
// depends on their own rows only, so a metric is the sum over leaves of the metric
// within each leaf, and a leaf's aggregates change only when rows of its users arrive
// or are deleted. A metric's root is that sum.
const (
	buckets         = 65536
	leavesPerBucket = 4
	leafCount       = buckets * leavesPerBucket
)

// stamp is what a node's aggregates were computed from.
type stamp struct {
	exposureRows, eventRows, generation uint64
}

// empty tells a node whose buckets never received a row: it is not stored, and
// needs no computing. (Migration 00041 fed every row stored before it through the
// counting views, so a bucket without counts has no rows.)
func (st stamp) empty() bool { return st.exposureRows == 0 && st.eventRows == 0 }

// combination is what the aggregates of a node are split by.
type combination struct {
	multi            uint8
	variant, segment string
	day              int64 // Unix seconds of the day's midnight, UTC
}

// entry is the aggregates of one combination.
type entry struct {
	combination
	users, conversions                                     uint64
	sum, sumSq, preSum, preSumSq, preCross, ipwNum, ipwDen float64
}

// node is one metric_nodes row: its stamp, which computation wrote it, the
// aggregates per combination and, for a root, what it sums.
type node struct {
	stamp
	version uint64
	entries []entry
	leaves  []leaf // a root's, per leaf
}

// leaf is what a root knows of one of its leaves: the counts it was computed from
// and the version of the computation that stored it (0: no leaf). The leaves'
// generation is the root's.
type leaf struct {
	exposureRows, eventRows, version uint64
}

// addScaled adds sign × e's aggregates to a (sign 1 or −1). The counts wrap
// around in uint64 while differences are added, and come out right once all are,
// since a true count is never negative.
func (a *entry) addScaled(e entry, sign int64) {
	f := float64(sign)
	a.users += uint64(sign) * e.users
	a.conversions += uint64(sign) * e.conversions
	a.sum += f * e.sum
	a.sumSq += f * e.sumSq
	a.preSum += f * e.preSum
	a.preSumSq += f * e.preSumSq
	a.preCross += f * e.preCross
	a.ipwNum += f * e.ipwNum
	a.ipwDen += f * e.ipwDen
}

// add adds e to the entry of its combination.
func (n *node) add(e entry) {
	for i := range n.entries {
		if n.entries[i].combination == e.combination {
			n.entries[i].addScaled(e, 1)
			return
		}
	}
	n.entries = append(n.entries, e)
}

// markStale marks in isStale the leaves whose stamps in root n differ from the
// counts want in generation gen, and reports whether there was any: a leaf the root
// sums whose counts moved (or all it sums, in another generation), or one it lacks
// that has rows.
func (n *node) markStale(want []stamp, gen uint64, isStale []bool) bool {
	found := false
	for l, st := range n.leaves {
		if st.version != 0 && (n.generation != gen || st.exposureRows != want[l].exposureRows || st.eventRows != want[l].eventRows) ||
			st.version == 0 && !want[l].empty() {
			isStale[l], found = true, true
		}
	}
	return found
}

// sumStamps is the stamp of root n in generation gen: the sum of its leaves'.
func (n *node) sumStamps(gen uint64) stamp {
	st := stamp{generation: gen}
	for _, l := range n.leaves {
		st.exposureRows += l.exposureRows
		st.eventRows += l.eventRows
	}
	return st
}

// delta is a signed sum of aggregates per combination (see addScaled).
type delta map[combination]*entry

// addChunk adds the difference between the leaves of chunk computed now and the
// old versions a root sums, and records the new ones in the root's leaves; it
// reports false if an old version is missing.
func (d delta) addChunk(chunk []uint32, leaves []leaf, old, computed map[uint32]*node, version uint64) bool {
	for _, b := range chunk {
		if leaves[b].version != 0 {
			o := old[b]
			if o == nil {
				return false
			}
			d.add(o, -1)
		}
		n := computed[b]
		d.add(n, 1)
		leaves[b] = leaf{n.exposureRows, n.eventRows, version}
	}
	return true
}

func (d delta) add(n *node, sign int64) {
	for _, e := range n.entries {
		a := d[e.combination]
		if a == nil {
			a = &entry{combination: e.combination}
			d[e.combination] = a
		}
		a.addScaled(e, sign)
	}
}

// apply returns entries changed by d, in a stable order. A combination left
// without users is dropped (all its sums are sums over no users).
func (d delta) apply(entries []entry) []entry {
	for i := range entries {
		if a := d[entries[i].combination]; a != nil {
			entries[i].addScaled(*a, 1)
			delete(d, entries[i].combination)
		}
	}
	for _, a := range d {
		entries = append(entries, *a)
	}
	entries = slices.DeleteFunc(entries, func(e entry) bool { return e.users == 0 })
	slices.SortFunc(entries, func(a, b entry) int {
		return cmp.Or(cmp.Compare(a.multi, b.multi), cmp.Compare(a.variant, b.variant), cmp.Compare(a.day, b.day),
			cmp.Compare(a.segment, b.segment))
	})
	return entries
}
