package segments

import "math"

// never is the "next change" of a rule that no passage of time alone can change.
const never = math.MaxInt64

// eval reports whether the rule holds at time t (ms) over one user's entries, and the
// earliest time after t at which its value may change if no further event arrives
// (never if none). The engine sleeps until then, so next must be > t and must not be
// later than the real change; an earlier one only costs a spurious wake-up.
//
// Entries with a time after t are ignored: the engine evaluates pending deadlines
// that precede events it has already stored. base is the user's first slot of this
// rule's patterns.
func (n *ruleNode) eval(es []entry, base uint16, t int64) (bool, int64) {
	switch n.kind {
	case nodeCount:
		in := window(seriesOf(es, base+uint16(n.pattern)), t-n.within, t)
		if len(in) < n.count {
			return false, never
		}
		// The count drops below the threshold when the count-th newest event
		// leaves the window.
		return true, in[len(in)-n.count].ts + n.within
	case nodeSum:
		return n.evalSum(window(seriesOf(es, base+uint16(n.pattern)), t-n.within, t))
	case nodeSequence:
		return n.evalSequence(es, base, t)
	}
	holds, next := n.kind == nodeAnd, int64(never)
	for i := range n.subs {
		h, nx := n.subs[i].eval(es, base, t)
		if n.kind == nodeAnd {
			holds = holds && h
		} else {
			holds = holds || h
		}
		next = min(next, nx)
	}
	return holds, next
}

// evalSum walks the window's events out oldest first to find when the sum crosses
// the threshold; values may be negative, so a sum can also rise when one leaves.
func (n *ruleNode) evalSum(in []entry) (bool, int64) {
	total := 0.0
	for _, e := range in {
		total += e.val
	}
	holds := total >= n.sum
	for i, e := range in {
		total -= e.val
		if i+1 < len(in) && in[i+1].ts == e.ts {
			continue // events of the same millisecond leave together
		}
		if (total >= n.sum) != holds {
			return holds, e.ts + n.within
		}
	}
	return holds, never
}

// evalSequence returns whether the sequence holds at t and the first later time it
// does not (or does): it can only change when a last step becomes old enough
// (absent) or a first step leaves the window, so it tries those times in order. Both
// lists are sorted, so merging them keeps this linear in the kept events.
func (n *ruleNode) evalSequence(es []entry, base uint16, t int64) (bool, int64) {
	holds := n.sequenceHolds(es, base, t)
	var ready []entry // last steps, which may become old enough
	if n.absent >= 0 {
		ready = seriesOf(es, base+uint16(n.steps[len(n.steps)-1]))
	}
	leave := seriesOf(es, base+uint16(n.steps[0]))
	for len(ready) > 0 || len(leave) > 0 {
		var at int64
		if len(leave) == 0 || (len(ready) > 0 && ready[0].ts+n.absentWithin <= leave[0].ts+n.within) {
			at, ready = ready[0].ts+n.absentWithin, ready[1:]
		} else {
			at, leave = leave[0].ts+n.within, leave[1:]
		}
		if at > t && n.sequenceHolds(es, base, at) != holds {
			return holds, at
		}
	}
	return holds, never
}

// sequenceHolds looks for steps in time order, all after t−within, whose last step is
// followed by no absent event and is at least absentWithin old. Taking the earliest
// match of each step but the last leaves the most room for the steps after it.
func (n *ruleNode) sequenceHolds(es []entry, base uint16, t int64) bool {
	after := t - n.within
	last := len(n.steps) - 1
	for _, p := range n.steps[:last] {
		s := window(seriesOf(es, base+uint16(p)), after, t)
		if len(s) == 0 {
			return false
		}
		after = s[0].ts
	}
	upTo := t
	if n.absent >= 0 {
		if a := window(seriesOf(es, base+uint16(n.absent)), math.MinInt64, t); len(a) > 0 {
			after = max(after, a[len(a)-1].ts)
		}
		upTo = t - n.absentWithin
	}
	return len(window(seriesOf(es, base+uint16(n.steps[last])), after, upTo)) > 0
}

// window returns the entries of a time-sorted series with after < ts ≤ upTo.
func window(s []entry, after, upTo int64) []entry {
	lo := 0
	for lo < len(s) && s[lo].ts <= after {
		lo++
	}
	hi := len(s)
	for hi > lo && s[hi-1].ts > upTo {
		hi--
	}
	return s[lo:hi]
}
