package segments

import "sort"

// entry is one remembered event of one pattern. A user's entries live in one slice
// sorted by (slot, ts): one small allocation per user instead of one per pattern,
// which is what keeps a million users in a few hundred megabytes.
type entry struct {
	ts   int64 // event time, Unix ms
	val  float64
	slot uint16
	str  uint32 // a feature's property value (Engine.strs), 0 if none; fits the padding
}

// membership is a user's state in one segment, kept only while the rule holds or the
// user is a member (during the TTL after it stopped holding).
type membership struct {
	seg     uint16
	holding bool
	member  bool
	since   int64 // entered, ms
	expires int64 // when the TTL runs out, while member && !holding
	// value is, for a feature, a digest of the value last reported (0: the default);
	// member is then value != 0.
	value uint64
}

// user is the keyed state of one user.
type user struct {
	id string
	// now is the event time the user was last evaluated at; it never goes back.
	now int64
	// next is the earliest time at which a rule, a TTL or the eviction of the
	// entries is due; sched is the time of this user's live timer (0: none).
	next, sched int64
	entries     []entry
	members     []membership
}

// seriesOf returns the entries of one slot.
func seriesOf(es []entry, slot uint16) []entry {
	lo := sort.Search(len(es), func(i int) bool { return es[i].slot >= slot })
	hi := lo
	for hi < len(es) && es[hi].slot == slot {
		hi++
	}
	return es[lo:hi]
}

// insertDistinct adds an event with a value to a slot that keeps only the newest
// event of each value (a feature's distinct values): an older event of the same value
// is replaced, a newer one makes this one irrelevant.
func (u *user) insertDistinct(slot uint16, ts int64, str uint32, keep int) {
	lo := sort.Search(len(u.entries), func(i int) bool { return u.entries[i].slot >= slot })
	for i := lo; i < len(u.entries) && u.entries[i].slot == slot; i++ {
		if u.entries[i].str != str {
			continue
		}
		if u.entries[i].ts >= ts {
			return
		}
		u.entries = append(u.entries[:i], u.entries[i+1:]...)
		break
	}
	u.insert(slot, ts, 0, str, keep)
}

// insert adds an event to a slot, keeping only its keep newest events.
func (u *user) insert(slot uint16, ts int64, val float64, str uint32, keep int) {
	lo := sort.Search(len(u.entries), func(i int) bool { return u.entries[i].slot >= slot })
	n := len(seriesOf(u.entries[lo:], slot))
	// Insert after every entry of the slot with ts ≤ this one, so arrival order is
	// kept among equal times.
	at := lo + sort.Search(n, func(i int) bool { return u.entries[lo+i].ts > ts })
	if n >= keep {
		if at == lo {
			return // older than every kept event: it cannot matter
		}
		// Drop the oldest to make room: shift the slot's entries before at left.
		copy(u.entries[lo:at-1], u.entries[lo+1:at])
		u.entries[at-1] = entry{ts: ts, val: val, slot: slot, str: str}
		return
	}
	u.entries = append(u.entries, entry{})
	copy(u.entries[at+1:], u.entries[at:])
	u.entries[at] = entry{ts: ts, val: val, slot: slot, str: str}
}

// prune drops entries that no rule can read at time t or later and returns when the
// last remaining one expires (never if none remain), when the user can be evicted.
func (u *user) prune(t int64, retain []int64) int64 {
	kept, last := u.entries[:0], int64(0)
	for _, e := range u.entries {
		if until := e.ts + retain[e.slot]; until > t {
			kept = append(kept, e)
			last = max(last, until)
		}
	}
	clear(u.entries[len(kept):])
	u.entries = kept
	if len(kept) == 0 {
		u.entries = nil // let the backing array go
		return never
	}
	return last
}

// membership returns the user's state in seg, or nil.
func (u *user) membership(seg uint16) *membership {
	for i := range u.members {
		if u.members[i].seg == seg {
			return &u.members[i]
		}
	}
	return nil
}

func (u *user) addMembership(seg uint16) *membership {
	u.members = append(u.members, membership{seg: seg})
	return &u.members[len(u.members)-1]
}

// dropIdleMemberships forgets segments the user is neither in nor holding.
func (u *user) dropIdleMemberships() {
	kept := u.members[:0]
	for _, m := range u.members {
		if m.member || m.holding {
			kept = append(kept, m)
		}
	}
	u.members = kept
	if len(kept) == 0 {
		u.members = nil
	}
}
