package experiments

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/liftlab/lift/segments"
)

// Config is every document the decision path needs, as loaded from the store.
type Config struct {
	Experiments []Experiment
	Flags       []Flag
	Segments    []Segment
	SavedGroups []SavedGroup
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
	groups  segments.SavedGroups
}

// entry is one experiment or one flag.
type entry struct {
	key  string
	exp  *compiledExperiment
	flag *compiledFlag
}

type compiledVariant struct {
	key    string
	value  json.RawMessage
	weight float64
}

type compiledExperiment struct {
	key       string
	seed      string
	seedV2    seededV2 // precomputed for version 2, the default
	version   int
	running   bool
	bandit    bool
	variants  []compiledVariant
	ranges    []Range
	targeting *segments.Condition
	// segments are the conditions of the segments the experiment is limited to,
	// resolved when the snapshot is built.
	segments  []*segments.Condition
	namespace *Namespace
}

type compiledRule struct {
	condition  *segments.Condition
	segment    *segments.Condition // nil when the rule names no segment
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
		groups:   make(segments.SavedGroups, len(cfg.SavedGroups)),
	}
	sum := sha256.New()
	enc := json.NewEncoder(sum)
	for _, g := range cfg.SavedGroups {
		s.groups[g.Key] = g.Values
		_ = enc.Encode(g)
	}
	// Attribute segments by key. Unknown segments (deleted, or behavioural ones this
	// process cannot evaluate) never match.
	segs := map[string]*segments.Condition{}
	for _, seg := range cfg.Segments {
		_ = enc.Encode(seg)
		if seg.Kind != "attribute" {
			continue
		}
		c := compileCondition(seg.Condition)
		if c == nil {
			c = matchAll
		}
		segs[seg.Key] = c
	}
	exps := map[string]*compiledExperiment{}
	var expEntries, flagEntries []entry
	for i := range cfg.Experiments {
		e := cfg.Experiments[i]
		_ = enc.Encode(e)
		e.Normalize()
		c := compileExperiment(&e, segs)
		exps[e.Key] = c
		expEntries = append(expEntries, entry{key: e.Key, exp: c})
	}
	for i := range cfg.Flags {
		f := cfg.Flags[i]
		_ = enc.Encode(f)
		f.Normalize()
		if _, clash := exps[f.Key]; clash {
			continue // keys are unique across experiments and flags; the experiment wins
		}
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
	return s
}

// neverMatch is a condition for documents whose stored condition no longer parses.
var neverMatch, _ = segments.ParseCondition(map[string]any{"$nor": []any{}}) // an empty $or is true; an empty $nor is false

// matchAll stands for a segment without a condition.
var matchAll, _ = segments.ParseCondition(map[string]any{})

func resolveSegment(segs map[string]*segments.Condition, key string) *segments.Condition {
	if c, ok := segs[key]; ok {
		return c
	}
	return neverMatch
}

func compileCondition(raw json.RawMessage) *segments.Condition {
	if len(raw) == 0 {
		return nil
	}
	c, err := segments.ParseConditionJSON(raw)
	if err != nil {
		return neverMatch
	}
	return c
}

func compileExperiment(e *Experiment, segs map[string]*segments.Condition) *compiledExperiment {
	c := &compiledExperiment{
		key:       e.Key,
		seed:      e.HashSeed,
		seedV2:    newSeededV2(e.HashSeed),
		version:   e.HashVersion,
		running:   e.Status == StatusRunning,
		bandit:    e.Type == TypeBandit,
		targeting: compileCondition(e.Targeting),
		namespace: e.Namespace,
	}
	for _, key := range e.Segments {
		c.segments = append(c.segments, resolveSegment(segs, key))
	}
	weights := make([]float64, len(e.Variants))
	for i, v := range e.Variants {
		c.variants = append(c.variants, compiledVariant{key: v.Key, value: variantValue(v), weight: v.Weight})
		weights[i] = v.Weight
	}
	c.ranges = BucketRanges(len(e.Variants), *e.Coverage, weights)
	if len(c.variants) == 0 {
		c.running = false // nothing to serve; treated as not eligible
	}
	return c
}

// variantValue is the value served for a variant: its own value, or its key as a JSON
// string when it has none (the OFREP mapping in DESIGN.md).
func variantValue(v Variant) json.RawMessage {
	if len(v.Value) > 0 {
		return v.Value
	}
	b, _ := json.Marshal(v.Key)
	return b
}

func compileFlag(f *Flag, exps map[string]*compiledExperiment, segs map[string]*segments.Condition) *compiledFlag {
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
