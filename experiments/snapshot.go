package experiments

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/liftlab/lift/segments/condition"
)

// Config is every document the decision path needs, as loaded from the store.
type Config struct {
	Experiments []Experiment
	Flags       []Flag
	Segments    []Segment
	SavedGroups []SavedGroup
	// BanditWeights are the latest weights the bandit updater published, per bandit
	// experiment and segment.
	BanditWeights []BanditWeights
	// Members answers behavioural segment membership. It is not loaded with the rest:
	// memberships change per event, so the snapshot reads the live set (Live fills
	// it in). Nil means no behavioural segment has members.
	Members Members
	// Features are the real-time user features (features.go); FeatureValues answers
	// their values, live like Members (nil: every feature has its default).
	Features      []Feature
	FeatureValues FeatureValues
	// Recommenders are the item recommenders (recommenders.go).
	Recommenders []Recommender
}

// Members tells whether a user is currently in a behavioural segment.
type Members interface {
	IsMember(segment, userID string) bool
}

// BanditWeights are the traffic weights the bandit updater computed for one
// experiment and segment ("" for the global bandit), in the order of Variants.
type BanditWeights struct {
	Experiment string    `json:"experiment"`
	Segment    string    `json:"segment"`
	Version    int64     `json:"version"`
	Variants   []string  `json:"variants"`
	Weights    []float64 `json:"weights"`
	ComputedAt time.Time `json:"computed_at"`
}

// Snapshot is an immutable, compiled view of the configuration. The decision path
// reads it without locks; a new one replaces it whole when the configuration changes.
type Snapshot struct {
	// Version identifies the configuration content; equal content, equal version.
	Version string
	// LoadedAt is when the configuration was read from the store.
	LoadedAt time.Time

	// entries lists experiments then flags, each group in key order, so "decide
	// everything" is deterministic and needs no map lookups; index finds one by key.
	entries []entry
	index   map[string]int
	keys    []string
	groups  condition.SavedGroups
	members Members
	// hasSticky spares Stick its work when no experiment is sticky.
	hasSticky bool
	// features are the defined features; readsFeatures says whether a condition
	// may read them (only then do decisions add them to the attributes).
	features      []compiledFeature
	featureValues FeatureValues
	readsFeatures bool
	recommenders  map[string]Recommender
	// impersonal marks the view Impersonal returns; impersonalView is that view.
	impersonal     bool
	impersonalView *Snapshot
	// docs are the documents the snapshot was compiled from (view.go).
	docs snapshotDocs
}

// entry is one experiment or one flag.
type entry struct {
	key  string
	exp  *compiledExperiment
	flag *compiledFlag
}

type compiledVariant struct {
	key   string
	value json.RawMessage
}

type compiledExperiment struct {
	key      string
	seed     string
	seedV2   seededV2 // precomputed for version 2, the default
	version  int
	running  bool
	bandit   bool
	sticky   bool
	variants []compiledVariant
	alloc    allocation
	// perSegment are a bandit's segments in order: a user goes to the first one they
	// belong to, everyone else to alloc.
	perSegment []segmentAllocation
	targeting  *condition.Condition
	// segments are the conditions of the segments the experiment is limited to,
	// resolved when the snapshot is built.
	segments  []*segmentRef
	namespace *Namespace
}

// allocation is how traffic splits over the variants: hash ranges and the weight
// (assignment probability) of each variant.
type allocation struct {
	ranges  []Range
	weights []float64
}

func newAllocation(coverage float64, weights []float64) allocation {
	return allocation{ranges: BucketRanges(len(weights), coverage, weights), weights: weights}
}

type segmentAllocation struct {
	key   string
	ref   *segmentRef
	alloc allocation
}

type compiledRule struct {
	condition  *condition.Condition
	segment    *segmentRef // nil when the rule names no segment
	rollout    float64
	variant    string
	value      json.RawMessage
	experiment *compiledExperiment // nil when the rule names a missing experiment
	runs       bool                // the rule runs an experiment
}

type compiledFlag struct {
	key      string
	keyV2    seededV2 // rollouts hash the user with the flag key as seed
	enabled  bool
	def      json.RawMessage
	rules    []compiledRule
	flagType string
}

// NewSnapshot compiles cfg. Documents were validated when they were written; a
// condition that no longer parses (or a dangling reference) makes that document never
// match rather than failing the whole snapshot, so one bad row cannot stop decisions.
func NewSnapshot(cfg *Config, loadedAt time.Time) *Snapshot {
	s := &Snapshot{
		LoadedAt: loadedAt,
		index:    make(map[string]int, len(cfg.Experiments)+len(cfg.Flags)),
		groups:   make(condition.SavedGroups, len(cfg.SavedGroups)),
	}
	sum := sha256.New()
	enc := json.NewEncoder(sum)
	s.docs = newSnapshotDocs(cfg)
	for _, g := range cfg.SavedGroups {
		s.groups[g.Key] = g.Values
		_ = enc.Encode(g)
	}
	// Segments by key: attribute segments test the request's attributes, behavioural
	// ones the memberships the segment engine publishes. Unknown segments, and drafts
	// never published, never match.
	segs := map[string]*segmentRef{}
	for _, seg := range cfg.Segments {
		_ = enc.Encode(seg)
		if !seg.IsPublished() {
			continue
		}
		s.docs.segments[seg.Key] = seg
		if seg.Kind == "behavioral" {
			segs[seg.Key] = &segmentRef{behavioral: seg.Key}
			continue
		}
		c := compileCondition(seg.Condition)
		if c == nil {
			c = matchAll
		}
		segs[seg.Key] = &segmentRef{cond: c}
	}
	s.docs.refs = segs
	s.members = cfg.Members
	for _, f := range cfg.Features {
		_ = enc.Encode(f)
	}
	s.features, s.featureValues = compileFeatures(cfg.Features), cfg.FeatureValues
	s.readsFeatures = len(s.features) > 0 && conditionsReadFeatures(cfg)
	s.recommenders = make(map[string]Recommender, len(cfg.Recommenders))
	for _, r := range cfg.Recommenders {
		_ = enc.Encode(r)
		r.Normalize()
		s.recommenders[r.Key] = r
	}
	bw := map[string]map[string]BanditWeights{}
	for _, w := range cfg.BanditWeights {
		if bw[w.Experiment] == nil {
			bw[w.Experiment] = map[string]BanditWeights{}
		}
		bw[w.Experiment][w.Segment] = w
		_ = enc.Encode(w)
	}
	exps := map[string]*compiledExperiment{}
	var expEntries, flagEntries []entry
	for i := range cfg.Experiments {
		e := cfg.Experiments[i]
		_ = enc.Encode(e)
		e.Normalize()
		s.docs.experiments[e.Key] = e
		c := compileExperiment(&e, segs, bw)
		exps[e.Key] = c
		expEntries = append(expEntries, entry{key: e.Key, exp: c})
		s.hasSticky = s.hasSticky || c.sticky
	}
	for i := range cfg.Flags {
		f := cfg.Flags[i]
		_ = enc.Encode(f)
		f.Normalize()
		if _, clash := exps[f.Key]; clash {
			continue // keys are unique across experiments and flags; the experiment wins
		}
		s.docs.flags[f.Key] = f
		flagEntries = append(flagEntries, entry{key: f.Key, flag: compileFlag(&f, exps, segs)})
	}
	byKey := func(a, b entry) int { return strings.Compare(a.key, b.key) }
	slices.SortFunc(expEntries, byKey)
	slices.SortFunc(flagEntries, byKey)
	s.entries = append(expEntries, flagEntries...)
	for i, e := range s.entries {
		s.index[e.key] = i
		s.keys = append(s.keys, e.key)
	}
	s.Version = hex.EncodeToString(sum.Sum(nil)[:12])
	s.impersonalView = impersonalView(s)
	return s
}

// neverMatch is a condition for documents whose stored condition no longer parses.
var neverMatch, _ = condition.ParseCondition(map[string]any{"$nor": []any{}}) // an empty $or is true; an empty $nor is false

// matchAll stands for a segment without a condition.
var matchAll, _ = condition.ParseCondition(map[string]any{})

// segmentRef is a segment resolved when the snapshot is built: a condition on
// attributes, or the key of a behavioural segment.
type segmentRef struct {
	cond       *condition.Condition
	behavioral string
}

var unknownSegment = &segmentRef{cond: neverMatch}

func resolveSegment(segs map[string]*segmentRef, key string) *segmentRef {
	if r, ok := segs[key]; ok {
		return r
	}
	return unknownSegment
}

func compileCondition(raw json.RawMessage) *condition.Condition {
	if len(raw) == 0 {
		return nil
	}
	c, err := condition.ParseConditionJSON(raw)
	if err != nil {
		return neverMatch
	}
	return c
}

func compileExperiment(e *Experiment, segs map[string]*segmentRef, bw map[string]map[string]BanditWeights) *compiledExperiment {
	c := &compiledExperiment{
		key:       e.Key,
		seed:      e.HashSeed,
		seedV2:    newSeededV2(e.HashSeed),
		version:   e.HashVersion,
		running:   e.Status == StatusRunning,
		bandit:    e.Type == TypeBandit,
		sticky:    e.Type == TypeBandit && e.Bandit != nil && e.Bandit.Sticky,
		targeting: compileCondition(e.Targeting),
		namespace: e.Namespace,
	}
	for _, key := range e.Segments {
		c.segments = append(c.segments, resolveSegment(segs, key))
	}
	weights := make([]float64, len(e.Variants))
	for i, v := range e.Variants {
		c.variants = append(c.variants, compiledVariant{key: v.Key, value: variantValue(v)})
		weights[i] = v.Weight
	}
	if len(c.variants) == 0 {
		c.running = false // nothing to serve; treated as not eligible
		return c
	}
	if !c.bandit {
		c.alloc = newAllocation(*e.Coverage, weights)
		return c
	}
	// A bandit serves the updater's weights once there are any (until then, and for
	// variants changed since, the configured ones).
	published := func(segment string) []float64 {
		if w, ok := bw[e.Key][segment]; ok && slices.Equal(w.Variants, variantKeys(e.Variants)) {
			return w.Weights
		}
		return nil
	}
	global := published("")
	if global == nil {
		global = weights
	}
	if i := winnerIndex(e); i >= 0 {
		// The winner is declared: everyone gets it, whatever their segment.
		one := make([]float64, len(e.Variants))
		one[i] = 1
		c.alloc = newAllocation(*e.Coverage, one)
		return c
	}
	c.alloc = newAllocation(*e.Coverage, global)
	if e.Bandit != nil {
		for _, key := range e.Bandit.PerSegment {
			w := published(key)
			if w == nil {
				w = global
			}
			c.perSegment = append(c.perSegment, segmentAllocation{key: key, ref: resolveSegment(segs, key), alloc: newAllocation(*e.Coverage, w)})
		}
	}
	return c
}

// winnerIndex is the index of a bandit's declared winner, or -1.
func winnerIndex(e *Experiment) int {
	if e.Bandit == nil || e.Bandit.Winner == "" {
		return -1
	}
	return slices.Index(variantKeys(e.Variants), e.Bandit.Winner)
}

func variantKeys(vs []Variant) []string {
	keys := make([]string, len(vs))
	for i, v := range vs {
		keys[i] = v.Key
	}
	return keys
}

// variantValue is the value served for a variant: its own value, or its key as a JSON
// string when it has none (docs/api.md, the OFREP mapping).
func variantValue(v Variant) json.RawMessage {
	if len(v.Value) > 0 {
		return v.Value
	}
	b, _ := json.Marshal(v.Key)
	return b
}

func compileFlag(f *Flag, exps map[string]*compiledExperiment, segs map[string]*segmentRef) *compiledFlag {
	c := &compiledFlag{key: f.Key, keyV2: newSeededV2(f.Key), enabled: *f.Enabled, def: f.Default, flagType: f.Type}
	for i, r := range f.Rules {
		cr := compiledRule{
			condition:  compileCondition(r.Condition),
			rollout:    1,
			variant:    r.Variant,
			value:      r.Value,
			experiment: exps[r.Experiment],
			runs:       r.Experiment != "",
		}
		if r.Segment != "" {
			cr.segment = resolveSegment(segs, r.Segment)
		}
		if r.Rollout != nil {
			cr.rollout = *r.Rollout
		}
		if cr.variant == "" {
			cr.variant = "rule-" + strconv.Itoa(i)
		}
		c.rules = append(c.rules, cr)
	}
	return c
}

// Keys returns the keys of every experiment and flag, experiments first.
func (s *Snapshot) Keys() []string { return s.keys }
