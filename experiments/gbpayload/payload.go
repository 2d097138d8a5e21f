// Package gbpayload describes lift's decisions in the feature payload of GrowthBook's
// SDKs (SDK spec 0.7), so that any GrowthBook SDK pointed at lift evaluates exactly as
// /v1/decide does, and reduces decisions to the answer of GrowthBook's remote
// evaluation.
//
// The mapping (docs/sdk.md):
//   - Every experiment is a feature of the same key. A running one has experiment
//     rules; its default value is the control's, which is what lift serves anyone
//     outside it. A bandit with per-segment weights has one rule per segment, in lift's
//     matching order, each excluding the earlier segments, then one for everyone
//     else, so that a user outside one segment's coverage never falls through into
//     another's allocation.
//   - An experiment rule carries the variations (values, or keys where a variant has
//     none), the weights, the coverage and the exact hash ranges lift computed from
//     them (so SDKs bucket by lift's arithmetic, not their own), the seed, the hash
//     version, the namespace and, as its condition, the targeting and segments. meta
//     names the variant keys; phase names the bandit segment of the allocation, which
//     exposures report.
//   - Every flag is a feature whose rules follow the flag's in order: a value rule is a
//     force rule with the rule's condition and segment; a rollout is a force rule with
//     coverage, seeded by the flag key with hash version 2 as lift hashes it; an
//     experiment rule inlines that experiment's rules (a user it does not assign falls
//     through to the next rule, as in lift); a disabled flag is its default alone.
//   - Segments: an attribute segment's condition is inlined; a behavioural one, which
//     only lift's segment engine knows, becomes a condition on the attribute
//     lift_segments (the keys of the user's segments, which /v1/decide returns on
//     request). Unknown and draft segments match nobody, so their rules are left out.
//   - Saved groups are inlined ($inGroup → $in, $notInGroup → $nin) so that SDKs that
//     predate saved-group references evaluate correctly, and sent as savedGroups too.
package gbpayload

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/liftlab/lift/experiments"
	"github.com/liftlab/lift/segments/condition"
)

// SegmentsAttribute is the attribute local evaluation reads behavioural segment
// memberships from: an array of segment keys.
const SegmentsAttribute = "lift_segments"

// HashAttribute is the attribute SDKs hash: the user id.
const HashAttribute = "id"

// Payload is the body of GET /api/features/{client key} and of a features event.
type Payload struct {
	Features    map[string]Feature `json:"features"`
	SavedGroups map[string][]any   `json:"savedGroups"`
	DateUpdated time.Time          `json:"dateUpdated"`
	// Sticky is the sticky-bucket document of a remote evaluation (see Evaluate).
	Sticky map[string]string `json:"sticky,omitempty"`
}

// Feature is one feature: the default value and the rules tried in order.
type Feature struct {
	DefaultValue json.RawMessage `json:"defaultValue"`
	Rules        []Rule          `json:"rules,omitempty"`
}

// Rule is a force rule (Force set) or an experiment rule (Variations set).
type Rule struct {
	ID            string          `json:"id,omitempty"`
	Condition     any             `json:"condition,omitempty"`
	Force         json.RawMessage `json:"force,omitempty"`
	Coverage      *float64        `json:"coverage,omitempty"`
	Seed          string          `json:"seed,omitempty"`
	HashVersion   int             `json:"hashVersion,omitempty"`
	HashAttribute string          `json:"hashAttribute,omitempty"`
	Tracks        []Track         `json:"tracks,omitempty"`
	experimentFields
}

// experimentFields are what an experiment rule and a tracked experiment share.
type experimentFields struct {
	Key        string            `json:"key,omitempty"`
	Variations []json.RawMessage `json:"variations,omitempty"`
	Weights    []float64         `json:"weights,omitempty"`
	Ranges     []Range           `json:"ranges,omitempty"`
	Meta       []VariationMeta   `json:"meta,omitempty"`
	Namespace  []any             `json:"namespace,omitempty"`
	Name       string            `json:"name,omitempty"`
	Phase      string            `json:"phase,omitempty"`
	// DisableStickyBucketing keeps an SDK's sticky-bucket service (if the app set one)
	// off experiments lift does not keep sticky.
	DisableStickyBucketing bool `json:"disableStickyBucketing,omitempty"`
}

// Range is a hash range [start, end).
type Range [2]float64

// VariationMeta names a variation.
type VariationMeta struct {
	Key  string `json:"key"`
	Name string `json:"name,omitempty"`
}

// Build describes the snapshot's experiments and flags as an SDK payload dated date.
func Build(snap *experiments.Snapshot, date time.Time) *Payload {
	b := builder{snap: snap}
	p := &Payload{Features: make(map[string]Feature, len(snap.Keys())), SavedGroups: map[string][]any{}, DateUpdated: date.UTC()}
	b.groups = condition.SavedGroups{}
	for _, g := range snap.SavedGroupDocs() {
		values := g.Values
		if values == nil {
			values = []any{}
		}
		p.SavedGroups[g.Key] = values
		b.groups[g.Key] = values
	}
	for _, key := range snap.Keys() {
		if e, ok := snap.ExperimentDoc(key); ok {
			f := Feature{DefaultValue: jsonNull}
			if len(e.Variants) > 0 {
				f.DefaultValue = experiments.ServedValue(e.Variants[0])
			}
			f.Rules = b.experimentRules(e)
			p.Features[key] = f
			continue
		}
		if fl, ok := snap.FlagDoc(key); ok {
			p.Features[key] = b.flag(fl)
		}
	}
	return p
}

var jsonNull = json.RawMessage("null")

type builder struct {
	snap   *experiments.Snapshot
	groups condition.SavedGroups
}

func (b *builder) flag(f experiments.Flag) Feature {
	out := Feature{DefaultValue: f.Default}
	if len(out.DefaultValue) == 0 {
		out.DefaultValue = jsonNull
	}
	if f.Enabled != nil && !*f.Enabled {
		return out
	}
	for i, r := range f.Rules {
		if r.Experiment != "" {
			if e, ok := b.snap.ExperimentDoc(r.Experiment); ok {
				out.Rules = append(out.Rules, b.experimentRules(e)...)
			}
			continue
		}
		cond, never := b.condition(r.Condition)
		if r.Segment != "" {
			seg, segNever := b.segment(r.Segment)
			cond, never = and(cond, seg), never || segNever
		}
		rollout := 1.0
		if r.Rollout != nil {
			rollout = *r.Rollout
		}
		if never || rollout <= 0 {
			continue // matches nobody
		}
		id := r.Variant
		if id == "" {
			id = "rule-" + strconv.Itoa(i)
		}
		rule := Rule{ID: id, Condition: cond, Force: r.Value}
		if len(rule.Force) == 0 {
			rule.Force = jsonNull
		}
		if rollout < 1 {
			// lift hashes rollouts with the flag key as seed and hash version 2, so
			// raising a rollout keeps everyone already in it.
			rule.Coverage, rule.Seed, rule.HashVersion, rule.HashAttribute = &rollout, f.Key, 2, HashAttribute
		}
		out.Rules = append(out.Rules, rule)
	}
	return out
}

// experimentRules are the rules that assign users as lift does; none when the
// experiment is not running or matches nobody.
func (b *builder) experimentRules(e experiments.Experiment) []Rule {
	allocs, ok := b.snap.Allocations(e.Key)
	if !ok {
		return nil
	}
	eligible, never := b.condition(e.Targeting)
	for _, key := range e.Segments {
		c, n := b.segment(key)
		eligible, never = and(eligible, c), never || n
	}
	if never {
		return nil
	}
	var rules []Rule
	var earlier []any // the conditions of the bandit segments matched before
	for _, a := range allocs {
		cond := and(eligible, nor(earlier))
		if a.Segment != "" {
			seg, n := b.segment(a.Segment)
			if n {
				continue // lift never matches it
			}
			cond = and(cond, seg)
			if seg == nil {
				// Everyone is in this segment: later allocations are unreachable.
				return append(rules, b.experimentRule(e, a, cond))
			}
			earlier = append(earlier, seg)
		}
		rules = append(rules, b.experimentRule(e, a, cond))
	}
	return rules
}

func (b *builder) experimentRule(e experiments.Experiment, a experiments.Allocation, cond any) Rule {
	coverage := 1.0
	if e.Coverage != nil {
		coverage = *e.Coverage
	}
	return Rule{
		ID:               e.Key + segmentSuffix(a.Segment),
		Condition:        cond,
		Coverage:         &coverage,
		Seed:             e.HashSeed,
		HashVersion:      e.HashVersion,
		HashAttribute:    HashAttribute,
		experimentFields: trackedFields(e, a),
	}
}

func segmentSuffix(segment string) string {
	if segment == "" {
		return ""
	}
	return "@" + segment
}

// trackedFields describe the experiment to SDKs and their tracking callbacks.
func trackedFields(e experiments.Experiment, a experiments.Allocation) experimentFields {
	f := experimentFields{
		Key:                    e.Key,
		Weights:                a.Weights,
		Name:                   e.Name,
		Phase:                  a.Segment,
		DisableStickyBucketing: !(e.Type == experiments.TypeBandit && e.Bandit != nil && e.Bandit.Sticky),
	}
	for _, r := range a.Ranges {
		f.Ranges = append(f.Ranges, Range(r))
	}
	for _, v := range e.Variants {
		f.Variations = append(f.Variations, experiments.ServedValue(v))
		f.Meta = append(f.Meta, VariationMeta{Key: v.Key, Name: v.Name})
	}
	if ns := e.Namespace; ns != nil {
		f.Namespace = []any{ns.ID, ns.Range[0], ns.Range[1]}
	}
	return f
}

// segment is the condition that holds for a segment's members; never is true for
// segments lift matches nobody with.
func (b *builder) segment(key string) (cond any, never bool) {
	seg, ok := b.snap.SegmentDoc(key)
	if !ok {
		return nil, true
	}
	if seg.Kind == "behavioral" {
		return map[string]any{SegmentsAttribute: map[string]any{"$elemMatch": map[string]any{"$eq": key}}}, false
	}
	return b.condition(seg.Condition)
}

// condition decodes a stored condition with saved groups inlined: nil for none (every
// user matches), never for one that no longer parses, which lift matches nobody with.
func (b *builder) condition(raw json.RawMessage) (cond any, never bool) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, false
	}
	if _, err := condition.ParseConditionJSON(raw); err != nil {
		return nil, true
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber() // numbers as written, not rounded through float64
	if err := dec.Decode(&cond); err != nil {
		return nil, true
	}
	if m, ok := cond.(map[string]any); ok && len(m) == 0 {
		return nil, false
	}
	return Strict(inlineCondition(cond, b.groups)), false
}

func and(conds ...any) any {
	var all []any
	for _, c := range conds {
		if c != nil {
			all = append(all, c)
		}
	}
	switch len(all) {
	case 0:
		return nil
	case 1:
		return all[0]
	}
	return map[string]any{"$and": all}
}

// nor holds when none of conds does; nil for none.
func nor(conds []any) any {
	if len(conds) == 0 {
		return nil
	}
	return map[string]any{"$nor": append([]any(nil), conds...)}
}

// inlineCondition replaces saved-group references in a condition (an object of
// fields and $and/$or/$nor/$not) by the groups' values.
func inlineCondition(c any, groups condition.SavedGroups) any {
	return mapFields(c, func(v any) any { return inlineValue(v, groups) })
}

// mapFields rebuilds a condition with what each field is tested with replaced by
// value's result, through $and, $or, $nor and $not.
func mapFields(c any, value func(any) any) any {
	m, ok := c.(map[string]any)
	if !ok {
		return c
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		switch k {
		case "$and", "$or", "$nor":
			if list, ok := v.([]any); ok {
				mapped := make([]any, len(list))
				for i, e := range list {
					mapped[i] = mapFields(e, value)
				}
				v = mapped
			}
		case "$not":
			v = mapFields(v, value)
		default:
			v = value(v)
		}
		out[k] = v
	}
	return out
}

// inlineValue does the same in what a field is tested with: a literal, or an object
// of operators.
func inlineValue(v any, groups condition.SavedGroups) any {
	m, ok := v.(map[string]any)
	if !ok || !isOperatorObject(m) {
		return v
	}
	out := make(map[string]any, len(m))
	for op, arg := range m {
		switch op {
		case "$inGroup", "$notInGroup":
			id, _ := arg.(string)
			to := map[string]string{"$inGroup": "$in", "$notInGroup": "$nin"}[op]
			if _, clash := m[to]; clash {
				out[op] = arg // both in one object: left to the savedGroups the payload carries
				continue
			}
			values := groups[id]
			if values == nil {
				values = []any{} // an unknown group has no members
			}
			out[to] = values
			continue
		case "$not":
			arg = inlineValue(arg, groups)
		case "$elemMatch":
			if am, ok := arg.(map[string]any); ok && isOperatorObject(am) {
				arg = inlineValue(arg, groups)
			} else {
				arg = inlineCondition(arg, groups)
			}
		}
		out[op] = arg
	}
	return out
}

func isOperatorObject(m map[string]any) bool {
	if len(m) == 0 {
		return false
	}
	for k := range m {
		if !strings.HasPrefix(k, "$") {
			return false
		}
	}
	return true
}
