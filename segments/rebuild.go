package segments

import (
	"cmp"
	"math"
	"slices"
	"time"
)

// Rebuilding a segment from stored events (a new or changed rule, a lost checkpoint)
// without stopping the live input, and without counting an event twice:
//
//  1. StartRebuild(keys, cut): from then on those segments count only live events
//     received at or after cut, and report no changes.
//  2. Meanwhile a second engine with the same definitions is fed, in timestamp order,
//     the stored events received before cut (ClickHouse `events`), then the events
//     received at or after cut that the live input delivered before step 1 (read
//     again from the stream; none when cut is later than every event processed).
//  3. Merge adds its state to the rebuilding segments, brings them through the time
//     the live input has already covered, and ends their rebuild.
//
// Every event is counted once: received before cut it comes from storage (which must
// hold it by then: amqprunner puts cut far enough in the past), at or after cut from
// the stream, read again if the live input delivered it before step 1, else live.

// StartRebuild marks segments as rebuilding from stored events: they count only
// events received at or after cut and report no changes (Members leaves them out)
// until Merge. Their state is dropped. Keys the engine does not have are ignored.
func (e *Engine) StartRebuild(keys []string, cut time.Time) {
	c := cut.UnixMilli()
	rebuild := make([]bool, len(e.segs))
	for i := range e.segs {
		if s := &e.segs[i]; slices.Contains(keys, s.key) {
			e.setRebuilding(i, true)
			rebuild[i] = true
			for k := range s.patterns {
				e.from[int(s.base)+k] = c
			}
		}
	}
	for _, u := range e.users {
		u.entries = slices.DeleteFunc(u.entries, func(en entry) bool { return rebuild[e.segOfSlot(en.slot)] })
		u.members = slices.DeleteFunc(u.members, func(m membership) bool { return rebuild[m.seg] })
		if len(u.entries) == 0 {
			u.entries = nil
		}
		if len(u.members) == 0 {
			u.members = nil
		}
		e.reschedule(u)
	}
}

// setRebuilding switches a segment in or out of rebuilding. While rebuilding it keeps
// every live event (up to maxKept per pattern) however old, because Merge replays
// the time since the history's end with them.
func (e *Engine) setRebuilding(i int, on bool) {
	s := &e.segs[i]
	s.quiet = on
	for k, p := range s.patterns {
		slot := int(s.base) + k
		e.retain[slot], e.keep[slot] = p.retain, p.keep
		if on {
			e.retain[slot], e.keep[slot] = math.MaxInt64/4, max(p.keep, maxKept)
		}
	}
}

// Rebuilding returns the keys of the segments waiting for Merge.
func (e *Engine) Rebuilding() []string {
	var keys []string
	for _, s := range e.segs {
		if s.quiet {
			keys = append(keys, s.key)
		}
	}
	return keys
}

// segOfSlot returns the segment a slot belongs to.
func (e *Engine) segOfSlot(slot uint16) int {
	i, _ := slices.BinarySearchFunc(e.segs, slot, func(s segment, slot uint16) int {
		return int(s.base) - int(slot)
	})
	if i == len(e.segs) || e.segs[i].base > slot {
		i--
	}
	return i
}

// Merge adds the state of history, an engine fed stored events, to this engine's
// rebuilding segments with the same rule and TTL, and ends those rebuilds: their
// changes are reported again from now on (the difference between what a store holds
// and Members is for the caller to reconcile). A user the live input has already
// moved past the history is brought forward through every deadline in between with
// the events of both, so windows and TTLs end when they would have. It returns the
// keys whose rebuild ended. history must not be used afterwards.
func (e *Engine) Merge(history *Engine) []string {
	to := make([][]uint16, len(history.segs)) // history segment → rebuilding segments
	var done []string
	var merged []uint16
	for j := range e.segs {
		if !e.segs[j].quiet {
			continue
		}
		for i, h := range history.segs {
			if h.id == e.segs[j].id {
				to[i] = append(to[i], uint16(j))
				merged = append(merged, uint16(j))
				done = append(done, e.segs[j].key)
				break
			}
		}
	}
	if done == nil {
		return nil
	}
	if history.maxTime != math.MinInt64 {
		e.maxTime = max(e.maxTime, history.maxTime)
	}
	// Back to the rules' own retention (quiet until the end: no change is reported
	// for the merge itself).
	for _, j := range merged {
		e.setRebuilding(int(j), false)
		e.segs[j].quiet = true
	}
	defer func() {
		for _, j := range merged {
			e.segs[j].quiet = false
		}
	}()
	// Users with live events only: their segments were evaluated as the events came;
	// forget what the rules no longer need.
	for _, u := range e.users {
		if history.users[u.id] == nil {
			e.evaluate(u, u.now)
			e.reschedule(u)
		}
	}
	for _, hu := range history.users {
		u := e.users[hu.id]
		if u == nil {
			u = &user{id: hu.id, now: hu.now, next: never}
			e.users[u.id] = u
		}
		for _, en := range hu.entries {
			i := history.segOfSlot(en.slot)
			for _, j := range to[i] {
				u.entries = append(u.entries, entry{ts: en.ts, val: en.val, slot: e.segs[j].base + en.slot - history.segs[i].base,
					str: e.strs.intern(history.strs.get(en.str))})
			}
		}
		// The history's memberships replace those the live events alone gave; the
		// replay below brings them up to date with both.
		u.members = slices.DeleteFunc(u.members, func(m membership) bool { return slices.Contains(merged, m.seg) })
		for _, hm := range hu.members {
			for _, j := range to[hm.seg] {
				hm.seg = j
				u.members = append(u.members, hm)
			}
		}
		u.sort()
		u.dedupe(e.distinct)
		e.replay(u, merged, hu.now)
		// Only now: the replay read events older than the rules keep.
		u.trim(e.keep)
		u.now = max(u.now, hu.now)
		e.evaluate(u, u.now)
		e.reschedule(u)
	}
	return done
}

// replay brings u's segs from the history's clock from to the user's live clock,
// stepping through every deadline and every live event in between, in time order, as
// the segments would have seen them had they run all along. Changes are not
// reported: the store learns the outcome by reconciliation, not as changes dated in
// the past.
func (e *Engine) replay(u *user, segs []uint16, from int64) {
	var times []int64 // live events of segs after the history's end
	for _, j := range segs {
		s := &e.segs[j]
		for _, en := range u.entries {
			if en.slot >= s.base && int(en.slot) < int(s.base)+len(s.patterns) && en.ts > from && en.ts < u.now {
				times = append(times, en.ts)
			}
		}
	}
	slices.Sort(times)
	for t := from; t < u.now; {
		next := int64(never)
		for _, j := range segs {
			next = min(next, e.step(u, j, t))
		}
		for len(times) > 0 && times[0] <= t {
			times = times[1:]
		}
		if len(times) > 0 {
			next = min(next, times[0])
		}
		t = next
	}
}

// sort restores the (slot, ts) order of merged entries.
func (u *user) sort() {
	slices.SortStableFunc(u.entries, func(a, b entry) int {
		if a.slot != b.slot {
			return int(a.slot) - int(b.slot)
		}
		return cmp.Compare(a.ts, b.ts)
	})
}

// dedupe keeps, in the slots that keep only the newest event of each value
// (insertDistinct), only that one: history and live events may both hold a value.
func (u *user) dedupe(distinct []bool) {
	type key struct {
		slot uint16
		str  uint32
	}
	var seen map[key]bool
	drop := make([]bool, len(u.entries))
	for i := len(u.entries) - 1; i >= 0; i-- { // newest of each slot last
		en := u.entries[i]
		if !distinct[en.slot] {
			continue
		}
		if seen == nil {
			seen = map[key]bool{}
		}
		k := key{en.slot, en.str}
		drop[i], seen[k] = seen[k], true
	}
	kept := u.entries[:0]
	for i, en := range u.entries {
		if !drop[i] {
			kept = append(kept, en)
		}
	}
	clear(u.entries[len(kept):])
	u.entries = kept
}

// trim keeps only the keep newest entries of each slot, as insert does.
func (u *user) trim(keep []int) {
	kept := u.entries[:0]
	for i := 0; i < len(u.entries); {
		j := i
		for j < len(u.entries) && u.entries[j].slot == u.entries[i].slot {
			j++
		}
		kept = append(kept, u.entries[max(i, j-keep[u.entries[i].slot]):j]...)
		i = j
	}
	clear(u.entries[len(kept):])
	u.entries = kept
}
