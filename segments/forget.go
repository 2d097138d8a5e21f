package segments

// Forget drops everything the engine remembers about a user (their recent events,
// memberships and deadlines) without emitting any change: an erasure removes the
// user's stored memberships itself, and an exit emitted here would write them again.
// It reports whether the engine had state for the user. The user's pending timers
// go stale and are skipped when they fire.
func (e *Engine) Forget(userID string) bool {
	u, ok := e.users[userID]
	if !ok {
		return false
	}
	delete(e.users, userID)
	u.sched = 0
	u.entries, u.members = nil, nil
	return true
}
