package experiments

import (
	"encoding/json"
	"slices"
)

// Reason says why a user got a value; the values are part of the HTTP contract.
type Reason string

// Decision reasons.
const (
	ReasonSplit          Reason = "split"
	ReasonBandit         Reason = "bandit"
	ReasonTargetingMatch Reason = "targeting_match"
	ReasonDefault        Reason = "default"
	ReasonDisabled       Reason = "disabled"
	ReasonNotEligible    Reason = "not_eligible"
)

// Decision is what one experiment or flag gives one user.
type Decision struct {
	Variant    string          `json:"variant"`
	Value      json.RawMessage `json:"value"`
	Reason     Reason          `json:"reason"`
	Experiment bool            `json:"experiment"`

	// Assigned is true when the user was bucketed into an experiment, i.e. when an
	// exposure should be logged. ExperimentKey names that experiment (for flags that
	// run one) and Probability is the chance of this variant at assignment.
	Assigned      bool    `json:"-"`
	ExperimentKey string  `json:"-"`
	Probability   float64 `json:"-"`
	// Segment is the bandit segment the user was allocated in ("" for the global
	// bandit and for A/B tests).
	Segment string `json:"-"`
}

// Keyed is a decision with the key of the experiment or flag it answers.
type Keyed struct {
	Key string
	Decision
}

// Decide evaluates the experiments and flags named by keys (all of them when keys is
// empty) for one user and appends the decisions to dst, so a caller can reuse one
// buffer across requests. Unknown keys are left out of the result.
func (s *Snapshot) Decide(userID string, attrs map[string]any, keys []string, dst []Keyed) []Keyed {
	attrs = s.withFeatures(userID, attrs)
	if len(keys) == 0 {
		n := len(dst)
		dst = slices.Grow(dst, len(s.entries))[:n+len(s.entries)]
		for i := range s.entries {
			k := &dst[n+i]
			k.Key = s.entries[i].key
			s.decide(&s.entries[i], userID, attrs, &k.Decision)
		}
		return dst
	}
	for _, k := range keys {
		if i, ok := s.index[k]; ok {
			dst = append(dst, Keyed{Key: k})
			s.decide(&s.entries[i], userID, attrs, &dst[len(dst)-1].Decision)
		}
	}
	return dst
}

// Evaluate decides one experiment or flag for a user; ok is false when no experiment
// or flag has that key.
func (s *Snapshot) Evaluate(key, userID string, attrs map[string]any) (d Decision, ok bool) {
	i, found := s.index[key]
	if !found {
		return Decision{}, false
	}
	s.decide(&s.entries[i], userID, s.withFeatures(userID, attrs), &d)
	return d, true
}

// decide writes the decision into d: decisions are written in place, since copying
// them around costs more than a third of deciding 20 keys.
func (s *Snapshot) decide(e *entry, userID string, attrs map[string]any, d *Decision) {
	if e.exp != nil {
		s.assign(e.exp, userID, attrs, d)
		return
	}
	s.evalFlag(e.flag, userID, attrs, d)
}

// assign buckets a user into an experiment with GrowthBook's algorithm. Anyone outside
// the experiment gets the control with reason not_eligible.
func (s *Snapshot) assign(e *compiledExperiment, userID string, attrs map[string]any, d *Decision) {
	if !e.running || s.impersonal || !s.eligible(e, userID, attrs) {
		notEligible(e, d)
		return
	}
	var n float64
	if e.version == 2 {
		n = e.seedV2.hash(userID)
	} else {
		n, _ = Hash(e.seed, userID, e.version) // versions were validated: 1 here
	}
	alloc, segment := &e.alloc, ""
	for i := range e.perSegment {
		if s.in(e.perSegment[i].ref, userID, attrs) {
			alloc, segment = &e.perSegment[i].alloc, e.perSegment[i].key
			break
		}
	}
	i := ChooseVariation(n, alloc.ranges)
	if i < 0 {
		notEligible(e, d) // outside coverage
		return
	}
	v := &e.variants[i]
	reason := ReasonSplit
	if e.bandit {
		reason = ReasonBandit
	}
	*d = Decision{
		Variant: v.key, Value: v.value, Reason: reason, Experiment: true,
		Assigned: true, ExperimentKey: e.key, Probability: alloc.weights[i], Segment: segment,
	}
}

func (s *Snapshot) eligible(e *compiledExperiment, userID string, attrs map[string]any) bool {
	if e.namespace != nil && !InNamespace(userID, *e.namespace) {
		return false
	}
	if e.targeting != nil && !e.targeting.Match(attrs, s.groups) {
		return false
	}
	// An experiment limited to segments takes users who belong to every one of them.
	for _, seg := range e.segments {
		if !s.in(seg, userID, attrs) {
			return false
		}
	}
	return true
}

func notEligible(e *compiledExperiment, d *Decision) {
	*d = Decision{Reason: ReasonNotEligible, Experiment: true}
	if len(e.variants) > 0 {
		d.Variant, d.Value = e.variants[0].key, e.variants[0].value
	}
}

// evalFlag walks the flag's rules in order; the first that applies wins.
func (s *Snapshot) evalFlag(f *compiledFlag, userID string, attrs map[string]any, d *Decision) {
	if !f.enabled {
		*d = Decision{Variant: "default", Value: f.def, Reason: ReasonDisabled}
		return
	}
	// Every rollout of a flag hashes the same seed (see below), so hash at most once.
	bucket := -1.0
	for i := range f.rules {
		r := &f.rules[i]
		if r.runs {
			if r.experiment == nil {
				continue
			}
			if s.assign(r.experiment, userID, attrs, d); d.Assigned {
				return
			}
			continue
		}
		if r.condition != nil && !r.condition.Match(attrs, s.groups) {
			continue
		}
		if r.segment != nil && !s.in(r.segment, userID, attrs) {
			continue
		}
		if r.rollout < 1 {
			// Seeded by the flag key so that raising a rollout keeps everyone who was
			// already in it.
			if bucket < 0 {
				bucket = f.keyV2.hash(userID)
			}
			if bucket >= r.rollout {
				continue
			}
		}
		*d = Decision{Variant: r.variant, Value: r.value, Reason: ReasonTargetingMatch}
		return
	}
	*d = Decision{Variant: "default", Value: f.def, Reason: ReasonDefault}
}

// in reports whether a user belongs to a segment: by their attributes, or, for a
// behavioural segment, by the memberships the segment engine published.
func (s *Snapshot) in(r *segmentRef, userID string, attrs map[string]any) bool {
	if r.behavioral != "" {
		return s.members != nil && s.members.IsMember(r.behavioral, userID)
	}
	return r.cond.Match(attrs, s.groups)
}
