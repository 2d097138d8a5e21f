package experiments

import (
	"encoding/json"
	"slices"
	"sort"
)

// What the snapshot was compiled from, for code that describes the decisions to
// others, such as the GrowthBook SDK payload (experiments/gbpayload): the documents as
// normalised, and the allocations the decider really uses (a bandit's published
// weights, a declared winner). Everything returned is shared with the snapshot and
// must not be modified.

type snapshotDocs struct {
	experiments map[string]Experiment
	flags       map[string]Flag
	segments    map[string]Segment // published ones
	savedGroups []SavedGroup
	refs        map[string]*segmentRef
}

func newSnapshotDocs(cfg *Config) snapshotDocs {
	return snapshotDocs{
		experiments: make(map[string]Experiment, len(cfg.Experiments)),
		flags:       make(map[string]Flag, len(cfg.Flags)),
		segments:    make(map[string]Segment, len(cfg.Segments)),
		savedGroups: cfg.SavedGroups,
	}
}

// ExperimentDoc returns the normalised experiment document served under key.
func (s *Snapshot) ExperimentDoc(key string) (Experiment, bool) {
	e, ok := s.docs.experiments[key]
	return e, ok && s.has(key)
}

// FlagDoc returns the normalised flag document served under key (not one whose key an
// experiment took).
func (s *Snapshot) FlagDoc(key string) (Flag, bool) {
	f, ok := s.docs.flags[key]
	return f, ok && s.has(key)
}

func (s *Snapshot) has(key string) bool { _, ok := s.index[key]; return ok }

// SegmentDoc returns the published definition of a segment; ok is false for unknown
// segments and for drafts never published, which match nobody.
func (s *Snapshot) SegmentDoc(key string) (Segment, bool) {
	seg, ok := s.docs.segments[key]
	return seg, ok
}

// SavedGroupDocs returns the saved groups.
func (s *Snapshot) SavedGroupDocs() []SavedGroup { return s.docs.savedGroups }

// Allocation is how an experiment splits the users of one bandit segment ("" for
// everyone else, and for A/B tests) over its variants: the hash range of each variant
// (coverage applied) and its weight, the assignment probability logged.
type Allocation struct {
	Segment string
	Ranges  []Range
	Weights []float64
}

// Allocations returns the allocations an experiment assigns with: a bandit's
// per-segment ones in the order a user is matched against them, then the one for
// everyone else. ok is false unless a running experiment with variants has the key.
func (s *Snapshot) Allocations(key string) (allocs []Allocation, ok bool) {
	i, found := s.index[key]
	if !found || s.entries[i].exp == nil || !s.entries[i].exp.running {
		return nil, false
	}
	e := s.entries[i].exp
	for _, p := range e.perSegment {
		allocs = append(allocs, Allocation{Segment: p.key, Ranges: p.alloc.ranges, Weights: p.alloc.weights})
	}
	return append(allocs, Allocation{Ranges: e.alloc.ranges, Weights: e.alloc.weights}), true
}

// ServedValue is the value a variant serves: its own, or its key as a JSON string.
func ServedValue(v Variant) json.RawMessage { return variantValue(v) }

// MemberSegments returns the keys of the published segments a user belongs to, in key
// order: attribute segments by the attributes given, behavioural ones by the
// memberships the segment engine published (none in the Impersonal view).
func (s *Snapshot) MemberSegments(userID string, attrs map[string]any) []string {
	attrs = s.withFeatures(userID, attrs)
	keys := make([]string, 0, len(s.docs.refs))
	for k := range s.docs.refs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return slices.DeleteFunc(keys, func(k string) bool { return !s.in(s.docs.refs[k], userID, attrs) })
}
