package segments

import (
	"iter"
	"strings"
	"time"
)

// ChangeKind says whether a user entered or left a segment.
type ChangeKind uint8

// Membership changes.
const (
	Enter ChangeKind = iota + 1
	Exit
)

func (k ChangeKind) String() string {
	if k == Enter {
		return "enter"
	}
	return "exit"
}

// Change is a membership change. At is the event time of the change: for Enter the
// time the rule was found to hold, for Exit the end of the TTL after it stopped
// holding. Expiry (Enter only) is when the membership ends if no further event
// arrives (zero if nothing bounds it). Later events may move it, more views
// extending High Intent or a purchase ending cart abandonment, without a new Change:
// Exit is the authoritative end.
type Change struct {
	Kind    ChangeKind
	UserID  string
	Segment string
	At      time.Time
	Expiry  time.Time
}

// MembershipStats are a behavioural segment's size and recent movement, as the
// membership store counts them.
type MembershipStats struct {
	Segment     string `json:"segment"`
	Members     int64  `json:"members"`
	EnteredHour int64  `json:"entered_last_hour"`
	ExitedHour  int64  `json:"exited_last_hour"`
}

// evaluate brings every segment of u to time t (≥ u.now) and sets u.next.
func (e *Engine) evaluate(u *user, t int64) {
	u.now = t
	u.next = u.prune(t, e.retain)
	for i := range e.segs {
		u.next = min(u.next, e.step(u, uint16(i), t))
	}
	u.dropIdleMemberships()
}

// step brings u's membership of segment i to time t, reporting a change, and returns
// the earliest time after t at which it may change with no new event.
func (e *Engine) step(u *user, i uint16, t int64) int64 {
	s := &e.segs[i]
	if s.feature != nil {
		return e.stepFeature(u, i, t)
	}
	holds, next := s.rule.root.eval(u.entries, s.base, t)
	m := u.membership(i)
	switch {
	case holds:
		if m == nil {
			m = u.addMembership(i)
		}
		if !m.member {
			m.member, m.since = true, t
			e.emit(s, Change{Kind: Enter, UserID: u.id, Segment: s.key, At: msTime(t), Expiry: expiry(next, s.ttl)})
		}
		m.holding, m.expires = true, 0
	case m != nil:
		if m.holding {
			m.holding, m.expires = false, t+s.ttl
		}
		if m.member && t >= m.expires {
			m.member = false
			e.emit(s, Change{Kind: Exit, UserID: u.id, Segment: s.key, At: msTime(m.expires)})
		}
		if m.member {
			next = min(next, m.expires)
		}
	}
	return next
}

func (e *Engine) emit(s *segment, c Change) {
	if e.onChange != nil && !s.quiet {
		e.onChange(c)
	}
}

func expiry(next, ttl int64) time.Time {
	if next == never {
		return time.Time{}
	}
	return msTime(next + ttl)
}

func msTime(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

// Membership is a user's current membership in a segment.
type Membership struct {
	UserID  string
	Segment string
	Since   time.Time // when the user entered
}

// Members yields every current membership, in no particular order, except those of
// segments being rebuilt: the state to reconcile a store with after a rebuild.
func (e *Engine) Members() iter.Seq[Membership] {
	return func(yield func(Membership) bool) {
		for _, u := range e.users {
			for _, m := range u.members {
				s := &e.segs[m.seg]
				if m.member && !s.quiet && s.feature == nil && !yield(Membership{UserID: u.id, Segment: s.key, Since: msTime(m.since)}) {
					return
				}
			}
		}
	}
}

// PreviewSuffix marks the engine key of a segment's unpublished draft: the draft of
// "high-intent" runs as "high-intent@draft", whose memberships are counted (the
// segment's preview stats) but never reach decisions or webhooks. Document keys
// cannot contain "@", so no published segment has such a key.
const PreviewSuffix = "@draft"

// IsPreview reports whether an engine key is a draft's preview.
func IsPreview(key string) bool { return strings.HasSuffix(key, PreviewSuffix) }
