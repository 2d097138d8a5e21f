package experiments

import "sync"

// MemberSet is the live set of behavioural segment memberships a decision process
// holds in memory, fed from the segment engine's publications.
type MemberSet struct {
	mu  sync.RWMutex
	set map[string]map[string]struct{} // segment → user ids
}

// NewMemberSet returns an empty set.
func NewMemberSet() *MemberSet {
	return &MemberSet{set: map[string]map[string]struct{}{}}
}

// IsMember reports whether the user is in the segment now.
func (m *MemberSet) IsMember(segment, userID string) bool {
	m.mu.RLock()
	_, ok := m.set[segment][userID]
	m.mu.RUnlock()
	return ok
}

// Set records a membership change.
func (m *MemberSet) Set(segment, userID string, member bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	users := m.set[segment]
	if member {
		if users == nil {
			users = map[string]struct{}{}
			m.set[segment] = users
		}
		users[userID] = struct{}{}
	} else {
		delete(users, userID)
	}
}

// Size is the number of members of a segment.
func (m *MemberSet) Size(segment string) int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.set[segment])
}
