package experiments

// Impersonal is the snapshot to decide with for a user who did not consent to
// personalisation: nobody is put in an experiment (everyone gets the control with
// reason not_eligible, so no exposure is logged), behavioural segments have no
// members and nothing is sticky. Flags still serve their rules on the request's
// attributes and their rollouts, which deliver features rather than profile anyone.
func (s *Snapshot) Impersonal() *Snapshot {
	if s.impersonal {
		return s
	}
	return s.impersonalView
}

// impersonalView shares everything with s (both are immutable) but the memberships.
func impersonalView(s *Snapshot) *Snapshot {
	v := *s
	v.members, v.hasSticky, v.impersonal, v.impersonalView = nil, false, true, nil
	return &v
}
