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
	if len(keys) == 0 {
		n := len(dst)
		dst = slices.Grow(dst, len(s.entries))[:n+len(s.entries)]
		for i := range s.entries {
			k := &dst[n+i]
			k.Key = s.entries[i].key
			k.Decision = s.decide(&s.entries[i], userID, attrs)
		}
		return dst
	}
	for _, k := range keys {
		if d, ok := s.Evaluate(k, userID, attrs); ok {
			dst = append(dst, Keyed{Key: k, Decision: d})
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
	return s.decide(&s.entries[i], userID, attrs), true
}

func (s *Snapshot) decide(e *entry, userID string, attrs map[string]any) Decision {
	if e.exp != nil {
		return s.assign(e.exp, userID, attrs)
	}
	return s.evalFlag(e.flag, userID, attrs)
}

// assign buckets a user into an experiment with GrowthBook's algorithm. Anyone outside
// the experiment gets the control with reason not_eligible.
func (s *Snapshot) assign(e *compiledExperiment, userID string, attrs map[string]any) Decision {
	if !e.running || !s.eligible(e, userID, attrs) {
		return notEligible(e)
	}
	var n float64
	if e.version == 2 {
		n = e.seedV2.hash(userID)
	} else {
		n, _ = Hash(e.seed, userID, e.version) // versions were validated: 1 here
	}
	i := ChooseVariation(n, e.ranges)
	if i < 0 {
		return notEligible(e) // outside coverage
	}
	v := &e.variants[i]
	reason := ReasonSplit
	if e.bandit {
		reason = ReasonBandit
	}
	return Decision{
		Variant: v.key, Value: v.value, Reason: reason, Experiment: true,
		Assigned: true, ExperimentKey: e.key, Probability: v.weight,
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
		if !seg.Match(attrs, s.groups) {
			return false
		}
	}
	return true
}

func notEligible(e *compiledExperiment) Decision {
	d := Decision{Reason: ReasonNotEligible, Experiment: true}
	if len(e.variants) > 0 {
		d.Variant, d.Value = e.variants[0].key, e.variants[0].value
	}
	return d
}

// evalFlag walks the flag's rules in order; the first that applies wins.
func (s *Snapshot) evalFlag(f *compiledFlag, userID string, attrs map[string]any) Decision {
	if !f.enabled {
		return Decision{Variant: "default", Value: f.def, Reason: ReasonDisabled}
	}
	// Every rollout of a flag hashes the same seed (see below), so hash at most once.
	bucket := -1.0
	for i := range f.rules {
		r := &f.rules[i]
		if r.runs {
			if r.experiment == nil {
				continue
			}
			if d := s.assign(r.experiment, userID, attrs); d.Assigned {
				return d
			}
			continue
		}
		if r.condition != nil && !r.condition.Match(attrs, s.groups) {
			continue
		}
		if r.segment != nil && !r.segment.Match(attrs, s.groups) {
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
		return Decision{Variant: r.variant, Value: r.value, Reason: ReasonTargetingMatch}
	}
	return Decision{Variant: "default", Value: f.def, Reason: ReasonDefault}
}
